"""JVM options for the Spark processes the tests start (their sessions, Connect servers, a
stack's Spark): each test's Spark work is short, so the JVM compiles with its quick compiler only
and collects garbage on one thread. The same tests cost about 40 % less CPU with them (the data
path's module: 145 core-seconds against 85, its wall time unchanged), which the tiers running
side by side in ``make test`` share on two cores."""

OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
