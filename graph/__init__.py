"""kgr graph layer: the Neo4j store, its local server launcher, schema and artifacts."""
