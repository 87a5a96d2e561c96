import subprocess
import sys
import time

from bench.common import CpuMeter

# Its command line carries the title the meter looks for.
BUSY = (
    "import time\nend = time.process_time() + 0.6\n"
    "while time.process_time() < end: pass  # krousar-meter-test"
)


def test_a_process_that_ends_before_the_measure_does_still_counts() -> None:
    meter = CpuMeter(titles={"busy": ("krousar-meter-test",)}, interval=0.1)
    with meter.measuring() as used:
        subprocess.run([sys.executable, "-c", BUSY], check=True)
        time.sleep(0.3)  # ended and gone from /proc well before the measure ends
    assert used["busy"] > 0.4
