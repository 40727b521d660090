"""Offline side: CAD pool -> meshes -> rendered views -> embeddings -> FAISS index directory."""

if __name__ != "photo2cad.indexer":  # the folder imported from the repository root as a top-level `indexer`
    raise ImportError("this folder installs as photo2cad.indexer: import photo2cad.indexer, not indexer")
