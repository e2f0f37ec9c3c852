#!/usr/bin/env bash
# What a usage record costs SQLite under each usage schema the SQL stores have had (bench/usage-schema.c):
# 1, 100 and 1000 virtual keys in turn, 500 and 4000 records a commit.   bash bench/usage-schema.sh [records]
cd "$(dirname "$0")/.." || exit 1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -o "$out/usage-schema" bench/usage-schema.c -lsqlite3 || exit 1
for keys in 1 100 1000; do
  for per in 500 4000; do
    for schema in 1 2 3; do "$out/usage-schema" "$schema" "${1:-400000}" "$per" "$keys" "$out"; done
  done
done
