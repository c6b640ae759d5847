"""Side-by-side benchmarks of the firmware against reference implementations (``dysan bench-firmware``)."""
