# SPDX-License-Identifier: MIT
"""pycqueue: drop-ins for py_compile and compileall that compile through
pycqueued, the machine's byte-compile coordinator.

    from pycqueue import py_compile, compileall
    py_compile.compile("mod.py")
    compileall.compile_dir("/usr/lib/python3/dist-packages/foo")

Both modules have the standard library's signatures, return values,
output, exceptions and command lines (python3 -m pycqueue.compileall ...).
The daemon writes the .pyc files (atomically, durably, one writer per file,
with provenance); where no daemon serves this process, they compile
in-process exactly as the standard library does. See pycqueue-python(7).
"""

__version__ = "0.1.0"
__all__ = ["py_compile", "compileall"]
