"""Runs a command in a pseudo-terminal and answers its prompts, as a person at a terminal would.

usage: pty_answer.py CWD EXPECT1 ANSWER1 [EXPECT2 ANSWER2 ...] -- COMMAND [ARGS...]

Waits until the output so far contains EXPECTn, then types ANSWERn and Enter (an ANSWER of
"<EOF>" closes the terminal's input instead, as Ctrl-D on an empty line does). Prints
everything the command wrote, then exits with the command's exit status. Gives up after
30 s of waiting for one prompt.
"""
import os
import pty
import select
import sys
import time

cwd = sys.argv[1]
split = sys.argv.index("--")
pairs = sys.argv[2:split]
command = sys.argv[split + 1:]
steps = list(zip(pairs[0::2], pairs[1::2]))

pid, fd = pty.fork()
if pid == 0:
    os.chdir(cwd)
    os.execv(command[0], command)

seen = b""
consumed = 0


def read_some(timeout):
    global seen
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return True
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        return False
    if not chunk:
        return False
    seen += chunk
    return True


alive = True
for expect, answer in steps:
    deadline = time.time() + 30
    while expect.encode() not in seen[consumed:]:
        if not alive or time.time() > deadline:
            sys.stdout.write(seen.decode(errors="replace"))
            sys.stdout.write("\n[pty_answer] gave up waiting for %r\n" % expect)
            os.kill(pid, 9)
            sys.exit(97)
        alive = read_some(0.2)
    consumed = seen.index(expect.encode(), consumed) + len(expect)
    if answer == "<EOF>":
        os.write(fd, b"\x04")
    else:
        os.write(fd, answer.encode() + b"\r")

deadline = time.time() + 30
while alive and time.time() < deadline:
    alive = read_some(0.2)
if alive:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
