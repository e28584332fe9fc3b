"""Python used by examples/quickstart.yaml (the flow file's folder is on the import path)."""


def score(words: list[str], ctx=None) -> dict:
    long_words = [w for w in words if len(w) >= 6]
    return {"long": len(long_words), "longest": max(words, key=len) if words else None}
