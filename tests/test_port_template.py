"""The port template (firmware/ports/template/port_template.c) defines every function dysan_port.h declares
and compiles warning-free, so a new port starts from something that builds and keeps the contracts; a small C
driver checks the template's regions behave like flash (erase to 0xFF, NOR writes, ranges)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware"
TEMPLATE = FW / "ports" / "template" / "port_template.c"
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wmissing-prototypes", "-I", str(FW / "core/include"),
          "-I", str(FW / "ports/common")]

DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "dysan_port.h"
#include "port_common.h"
#define CHECK(c) do { if (!(c)) { printf("FAIL line %d: %s\n", __LINE__, #c); return 1; } } while (0)
int main(void)
{
    size_t cap = 0;
    uint8_t buf[8], id[8], key[32];
    const uint8_t one[4] = {1, 2, 3, 4}, back[4] = {0xF0, 0, 0, 0};
    dysan_port_init();
    CHECK(dysan_port_link_read(buf, sizeof buf) == 0);
    const uint8_t *st = dysan_port_region(DYSAN_REGION_STATE, &cap);
    CHECK(st != NULL && cap >= 2 * DYSAN_PORT_PAGE && cap % DYSAN_PORT_PAGE == 0 && st[0] == 0xFF);
    CHECK(dysan_port_region_write(DYSAN_REGION_STATE, DYSAN_PORT_PAGE, one, 4) == 0);
    CHECK(memcmp(st + DYSAN_PORT_PAGE, one, 4) == 0);
    CHECK(dysan_port_region_write(DYSAN_REGION_STATE, DYSAN_PORT_PAGE, back, 4) == DYSAN_PORT_ENOTERASED);
    CHECK(dysan_port_region_write(DYSAN_REGION_STATE, cap - 2, one, 4) == DYSAN_PORT_ERANGE);
    CHECK(dysan_port_region_erase_range(DYSAN_REGION_STATE, 0, DYSAN_PORT_PAGE) == 0);
    CHECK(st[DYSAN_PORT_PAGE] == 1); /* the other page is kept */
    CHECK(dysan_port_region_erase_range(DYSAN_REGION_STATE, 1, DYSAN_PORT_PAGE) != 0);
    CHECK(dysan_port_region_erase(DYSAN_REGION_STATE) == 0 && st[DYSAN_PORT_PAGE] == 0xFF);
    CHECK(dysan_port_region(DYSAN_REGION_COUNT, &cap) == NULL && cap == 0);
    CHECK(dysan_port_region_erase(DYSAN_REGION_COUNT) < 0);
    CHECK(dysan_port_identity(id, key) < 0);
    uint64_t c0 = dysan_port_cycles();
    CHECK(dysan_port_cycles() > c0);
    uint32_t m0 = dysan_port_millis();
    dysan_port_idle();
    CHECK(dysan_port_millis() >= m0);
    int16_t sample[6];
    CHECK(dysan_port_imu_read(sample) == 0 && dysan_port_imu_lost() == 0 && dysan_port_link_overflows() == 0);
    CHECK(dysan_port_link_write(one, 4) < 0);
    printf("ok\n");
    return 0;
}
"""


def header_functions() -> list[str]:
    text = re.sub(r"/\*.*?\*/", "", (FW / "core/include/dysan_port.h").read_text(), flags=re.S)
    return sorted(set(re.findall(r"\b(dysan_port_[a-z_]+)\s*\(", text)))


@pytest.fixture(scope="module")
def cc() -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    return cc


def test_template_defines_every_port_function(cc, tmp_path) -> None:
    obj = tmp_path / "port_template.o"
    r = subprocess.run([cc, *CFLAGS, "-c", str(TEMPLATE), "-o", str(obj)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    nm = subprocess.run(["nm", "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    defined = {f[2] for f in (line.split() for line in nm.splitlines()) if len(f) == 3 and f[1] == "T"}
    want = header_functions()
    assert len(want) >= 14 and "dysan_port_init" in want
    assert [f for f in want if f not in defined] == [], "port_template.c lacks these dysan_port.h functions"


def test_template_regions_behave_like_flash(cc, tmp_path) -> None:
    driver = tmp_path / "driver.c"
    driver.write_text(DRIVER)
    exe = tmp_path / "driver"
    r = subprocess.run([cc, *CFLAGS, "-o", str(exe), str(driver), str(TEMPLATE),
                        str(FW / "ports/common/port_common.c")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
