"""A python step that does nothing, for the loop benchmarks."""


def noop(x=None):
    return None
