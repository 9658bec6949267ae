//! The benchmark's own programs (`scripts/bench.py` drives them): `bench-bare`, a bare dropshot
//! handler (the floor of what any handler costs), `bench-naive`, the resend a team would write
//! instead of this server (one transaction, then the email written inline: the reference every
//! resend figure is a ratio to), and `bench-seed`, which fills a fresh store with businesses and
//! invitations through the application layer.
