"""Pure tests of the domain: normalizing Graph's data, health. No Azurite, no emulator."""
