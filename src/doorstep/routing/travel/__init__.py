"""Travel-time providers: straight line (default), OSM road network, OSRM."""
