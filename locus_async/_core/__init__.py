"""The pure core: no await, no clock reads, no network. Tests need no event loop."""
