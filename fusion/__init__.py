"""Graph-augmented question answering: entity linking, bounded retrieval, a fusion model that
scores relation paths from the question (MiniLM) and the graph encoder's embeddings, and the
ask pipeline that returns ranked answers with evidence paths."""
