#!/bin/bash
# Device run 2: OpenBLAS told the CPU (it picks Prescott on this virtualised
# Sapphire Rapids), then sgemm, models vs PyTorch, weak scaling 1..16.
. .dev-dist/env.sh
export PMIX_MCA_pcompress_base_silence_warning=1 PMIX_MCA_mca_base_component_show_load_errors=0
export OPENBLAS_CORETYPE=SkylakeX
run=runs/bench-dev-$(date -u +%Y%m%d-%H%M)
mkdir -p $run
t0=$(date +%s)
python3 -c "import torch; print('torch', torch.__version__); print(torch.__config__.show())" > $run/torch.txt 2>&1
{ echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo 88044ad)";
  echo "cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1) (Sapphire Rapids flags, 16 cores, virtualised)"; echo "cores: $(nproc)";
  echo "openblas: $(build/heed doctor 2>/dev/null | sed -n 's/^OpenBLAS: *core \([^,]*\),.*/\1/p')"; echo "OPENBLAS_CORETYPE: $OPENBLAS_CORETYPE"; echo "quick: 0"; } > $run/machine.txt
cat $run/machine.txt
OPENBLAS_NUM_THREADS=1 build/bench/bench_sgemm --threads 1 --seconds 0.3 > $run/sgemm.jsonl
tail -3 $run/sgemm.jsonl
echo "sgemm at $(( $(date +%s) - t0 )) s"
PYTHON=python3 timeout 300 bash scripts/bench_models.sh 1 10 vit cbam_cnn resnet20 transformer bert bilstm > $run/models.md 2> $run/models.err
cat $run/models.md; tail -5 $run/models.err
echo "models at $(( $(date +%s) - t0 )) s"
tar czf $OUT/run.tgz $run
