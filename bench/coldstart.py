"""Cold start: a fresh process imports `function_app` and answers its first HTTP request.

`python -m bench.coldstart` (settings from the environment) is the child: it times
`import function_app`, then hands the first request, `GET /api/v1/summary`, to the app's
HTTP function (`http_app_func`) exactly as the Functions host does (an
`azure.functions.HttpRequest` through the function's ASGI middleware), and prints one JSON line:
the two times, RSS after the import, peak RSS after the answer, and whether `msgraph` was
imported at each point.

`serve_first_answer()` (harness side) measures the same over real HTTP: it spawns
`python -m shared serve` on a loopback port and times spawn -> first 200 of `/api/v1/summary`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _graph_sdk_loaded() -> bool:
    return any(name == "msgraph" or name.startswith("msgraph.") for name in sys.modules)


def _status() -> dict[str, int]:
    from bench.child import proc_status

    return proc_status()


def child() -> dict[str, Any]:
    started = time.perf_counter()
    import function_app

    imported = time.perf_counter()
    after_import = _status()
    graph_after_import = _graph_sdk_loaded()

    import azure.functions as func

    functions = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
    handler = functions["http_app_func"].get_user_function()
    request = func.HttpRequest("GET", "http://localhost:7071/api/v1/summary", headers={}, params={}, body=b"")

    async def answer() -> Any:
        try:
            return await handler(request, None)
        finally:
            store = sys.modules.get("shared.storage.store")
            close = getattr(store, "close_store", None)
            if close is not None:
                await close()

    response = asyncio.run(answer())
    answered = time.perf_counter()
    return {
        "importSeconds": imported - started,
        "firstAnswerSeconds": answered - imported,
        "status": response.status_code,
        "rssAfterImportKB": after_import.get("VmRSS"),
        "peakRssKB": _status().get("VmHWM"),
        "msgraphAfterImport": graph_after_import,
        "msgraphAfterAnswer": _graph_sdk_loaded(),
    }


def serve_first_answer(env: dict[str, str], port: int, timeout: float = 60.0) -> dict[str, Any]:
    """Spawn `python -m shared serve` and time spawn -> first 200 of /api/v1/summary."""
    import httpx

    from bench.child import proc_status

    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "shared", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = started + timeout
        with httpx.Client(timeout=10.0) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"`python -m shared serve` exited with {process.returncode}")
                try:
                    response = client.get(f"http://127.0.0.1:{port}/api/v1/summary")
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() > deadline:
                    raise TimeoutError("`python -m shared serve` did not answer")
                time.sleep(0.005)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "peakRssKB": proc_status(process.pid).get("VmHWM")}
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    print(json.dumps(child(), separators=(",", ":")))
