#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# Turns a static page asset into a C header holding it as one string, so
# the dtx binary can write the report's pages without files beside it.
# Usage: embed.py NAME INPUT OUTPUT
import sys

name, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
with open(src, encoding="utf-8") as f:
    text = f.read()
out = ["// Generated from %s by harness/web/embed.py: do not edit." % src,
       "static const char %s[] =" % name]
for line in text.splitlines(True):
    esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    out.append('\t"%s"' % esc)
out[-1] += ";"
with open(dst, "w", encoding="utf-8") as f:
    f.write("\n".join(out) + "\n")
