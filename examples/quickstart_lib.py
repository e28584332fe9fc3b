"""Python used by examples/quickstart.yaml (the flow file's folder is on the import path)."""


def score(words: list[str], ctx=None) -> dict:
    long_words = [w for w in words if len(w) >= 6]
    return {"long": len(long_words), "longest": max(words, key=len) if words else None}


def collatz_steps(n: int) -> int:
    """How many Collatz steps take n to 1."""
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def word_stats(doc: dict) -> dict:
    words = doc["text"].split()
    return {"title": doc["title"], "words": len(words), "longest": max(words, key=len)}
