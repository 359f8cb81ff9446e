"""The embedded stack: launcher, supervisor, Spark cluster, the command line, data-root migration."""
