"""Offline side: CAD pool -> meshes -> rendered views -> embeddings -> FAISS index directory."""
