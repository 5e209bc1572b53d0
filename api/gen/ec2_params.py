#!/usr/bin/python3
"""Generates the top-level Query parameter names of every EC2 operation from
botocore's model, so the gateway can answer UnknownParameter like EC2.

usage: ec2_params.py <service-2.json> <output .inc>
Each line of the output is  {"Action", {"Param", ...}},
"""
import json
import sys


def query_name(name, member):
    # botocore's EC2 serializer: queryName, else capitalised locationName,
    # else the member name.
    if "queryName" in member:
        return member["queryName"]
    if "locationName" in member:
        loc = member["locationName"]
        return loc[0].upper() + loc[1:]
    return name


def main():
    model = json.load(open(sys.argv[1]))
    shapes = model["shapes"]
    lines = []
    for op, spec in sorted(model["operations"].items()):
        params = []
        if "input" in spec:
            members = shapes[spec["input"]["shape"]].get("members", {})
            params = sorted(query_name(n, m) for n, m in members.items())
        lines.append('{"%s", {%s}},' % (op, ", ".join('"%s"' % p for p in params)))
    with open(sys.argv[2], "w") as out:
        out.write("// Generated from botocore's EC2 model by api/gen/ec2_params.py. Do not edit.\n")
        out.write("\n".join(lines) + "\n")


main()
