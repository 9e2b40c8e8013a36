"""The XCom readers use the emulator tests' pair: an in-thread emulator (process runtime, isolated) and a sync client."""

from tests.emulator.conftest import api, emulator

__all__ = ["api", "emulator"]
