//! The benchmark's own programs (`scripts/bench.py` drives them): `bench-bare`, a bare dropshot
//! handler whose requests per second are the denominator of every ratio, and `bench-seed`, which
//! fills a fresh store with businesses and invitations through the application layer.
