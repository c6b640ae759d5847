"""The library behind the device verbs (``dysan devices | flash | calibrate | stream | monitor``).

Each verb's CLI module (``dysan.cli.<verb>``) only parses arguments and prints; the work lives here, so the
demo (:mod:`dysan.demo`) and the tests call the same functions the command line does:

* :mod:`.keystore` -- per-device HMAC keys kept outside the repository (0600 files);
* :mod:`.link` -- open a ``--port`` spec and start a protocol session with the right key (and the
  :func:`~.link.register_transport` hook through which the test suite adds its in-process links);
* :mod:`.replay` -- a subject's recorded samples, per activity, standing in for the IMU;
* :mod:`.flash` -- build / provision / flash plans for QEMU, the host build and the real boards;
* :mod:`.emulator` -- detached emulators (QEMU, host build) that outlive the command that started them;
* :mod:`.calibrate` -- the guided, resumable calibration session;
* :mod:`.stream` -- sanitized windows to CSV / Parquet / stdout, acknowledged once written;
* :mod:`.monitor`, :mod:`.devices` -- logs and counters; what is attached.

The test harness (virtual BLE bridge, fault-injecting proxy, C shims, golden vectors) is in :mod:`dysan.testing`.
"""
