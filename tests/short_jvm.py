"""JVM options for the short-lived Spark processes the tests start (their sessions, the first
tier's Connect servers, a cluster's executors): each one's Spark work is short, so the JVM compiles
with its quick compiler only and collects garbage on one thread. The same tests cost about 40 % less
CPU with them (the data path's module: 145 core-seconds against 85, its wall time unchanged), which
the first tier's two processes share on two cores. The end-to-end stack's Connect server, which
serves that tier's Spark work for its whole length, keeps the JVM's own compilers. Each maps the
classes it loads from the environment's class-data archive (``mlcycle.class_archive``), as the
platform's Spark processes do."""

from mlcycle.class_archive import with_archive

OPTIONS = with_archive("-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
