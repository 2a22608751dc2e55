"""The dlt source, loaded into DuckDB by dlt itself."""
