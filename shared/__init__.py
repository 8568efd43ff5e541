"""Entra Sync Monitor: the code behind the Function app's triggers.

Modules: `settings` (every setting), `normalize`/`health`/`timestamps` (pure), `graph` (Graph
SDK; imported only by polls), `store` (Table Storage), `poll` (one poll cycle), `api` (HTTP).
"""

__version__ = "0.1.0"
