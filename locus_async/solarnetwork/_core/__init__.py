"""SolarNetwork's pure core: SNWS2 signing, the response envelope and error mapping, and
the wire forms of every parameter and body. No await, no clock, no network."""
