#!/bin/bash
# The throughput figures of docs/BENCHMARKS.md, "Throughput (issue 17)", on a quiet machine.
# Usage: scripts/bench_throughput.sh [OUT_DIR]   (default bench_throughput/; one .txt per benchmark)
set -u
cd "$(dirname "$0")/.."
out=${1:-bench_throughput}; mkdir -p "$out"
lscpu | grep -E "Model name" > "$out/cpu.txt"
grep -o -w -E "avx2|avx512f|avx512_vnni|avx512_bf16|amx_bf16" /proc/cpuinfo | sort -u | tr '\n' ' ' >> "$out/cpu.txt"
tabula bench inference --game connect4 --blocks 4 --channels 48 --batch-sizes 1 16 256 --seconds 2 > "$out/inf_c4.txt" 2>&1
tabula bench inference --game go9 --blocks 4 --channels 32 --batch-sizes 1 16 128 --seconds 2 > "$out/inf_go9.txt" 2>&1
tabula bench inference --game chess --blocks 4 --channels 32 --batch-sizes 1 16 128 --seconds 2 > "$out/inf_chess.txt" 2>&1
for a in "--backend onnx" "--backend auto --eval-cache 200000" "--backend onnx" "--backend auto --eval-cache 200000"; do
  # shellcheck disable=SC2086
  tabula bench selfplay --game connect4 --blocks 4 --channels 48 --sims 32 --games 256 --moves 16 --warmup-moves 40 $a >> "$out/sp_c4.txt" 2>&1
done
tabula bench selfplay --game go9 --blocks 4 --channels 32 --sims 16 --games 128 --moves 16 > "$out/sp_go9.txt" 2>&1
tabula bench selfplay --game go9 --blocks 4 --channels 32 --sims 16 --games 128 --moves 16 --warmup-moves 40 --eval-cache 100000 >> "$out/sp_go9.txt" 2>&1
tabula bench selfplay --game chess --blocks 4 --channels 32 --sims 16 --games 128 --moves 8 > "$out/sp_chess.txt" 2>&1
tabula bench mcts --trees 256 --sims 200 > "$out/mcts.txt" 2>&1
echo "figures in $out/"
