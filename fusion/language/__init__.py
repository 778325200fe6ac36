"""The words: how questions are parsed (type nouns, hop words), how relations are phrased and
verbalised, the sentence encoder (MiniLM), and entity linking. Every English rule of kgr lives
here."""
