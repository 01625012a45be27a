"""signaling layer; see unisockets/__init__.py."""
