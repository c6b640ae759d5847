"""Support code for the test suite and the emulator harness -- not for the device tools.

Nothing under ``dysan`` outside this package imports it: ``dysan`` verbs never need it, and the test suite and
the developer scripts in ``tools/`` import it explicitly. What lives here:

* :mod:`.core_shim`, :mod:`.proto_shim` -- ctypes access to the C core and the C protocol core (built from
  ``firmware/tests/core_shim.c`` and ``proto_shim.c``), for differential tests against the Python twins;
* :mod:`.golden` -- the protocol's golden vectors and the generated examples of ``docs/protocol.md``
  (written by ``tools/gen_protocol_golden.py``; a fixed *test* key);
* :mod:`.faultlink` -- a TCP proxy that injects garbage, corruption and disconnects (robustness tests);
* :mod:`.virtual_nus` -- Bumble NUS peripherals and centrals on an in-process virtual link (no radio);
* :mod:`.ble_bridge` -- such a peripheral bridged to the emulated device's UART, reached by the host tools as
  ``--port virtual-ble:NAME`` once :func:`register_transports` has run (``tests/conftest.py`` calls it).

The shipped ``--port`` schemes (``serial:``, ``socket://``, ``ble:``...) are in :mod:`dysan.transport`; the
extra ones here are added through :func:`dysan.tools.link.register_transport`, so no special case for tests
sits in the device tools.
"""

from __future__ import annotations


def register_transports() -> None:
    """Make the test-only ``--port`` schemes (``virtual-ble:``) reachable from every device verb; idempotent."""
    from ..tools.link import register_transport
    from . import ble_bridge

    register_transport(ble_bridge.SCHEME, ble_bridge.open_virtual, replace=True)
