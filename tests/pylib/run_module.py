"""Runs the tests of one module (as `python -m unittest -v MODULE` does) and prints how long each
test took, slowest first: where a tier's time goes (Python 3.11's unittest has no --durations).

    python3 run_module.py MODULE      (from the module's directory; exit status as unittest's)"""
import os
import sys
import time
import unittest


class TimedResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timings = []
        self._started = None

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        self.timings.append((time.monotonic() - self._started, test.id()))
        super().stopTest(test)


def main(module):
    sys.path.insert(0, os.getcwd())  # as `python -m unittest` does: the module's directory
    suite = unittest.defaultTestLoader.loadTestsFromName(module)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=TimedResult)
    result = runner.run(suite)
    print("\ndurations (s):", file=sys.stderr)
    for seconds, name in sorted(result.timings, reverse=True):
        print(f"{seconds:8.1f}  {name}", file=sys.stderr)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
