# syntax=docker/dockerfile:1
# The project image: Ray 2.60 with this project installed, for KubeRay (infra/k8s) or any Ray node.
#
#   docker build -t registry.example.com/uts-cluster:0.1.0-gpu .                        # V100 training
#   docker build --build-arg VARIANT=cpu -t registry.example.com/uts-cluster:0.1.0-cpu .   # the head
#   docker build --build-arg EXTRAS=llm -t registry.example.com/uts-cluster:0.1.0-gpu-llm .   # vLLM
#   docker build --build-arg VARIANT=cpu --build-arg EXTRAS=llm \
#       -t registry.example.com/uts-cluster:0.1.0-cpu-llm .                          # CPU workers
#
# VARIANT picks the base image and the torch build together, so the two cannot be mismatched:
#   gpu: rayproject/ray:2.60.0-py311-gpu and torch's CUDA 12.6 build, the last with sm_70 kernels
#        (V100); it runs on A10G, L4, A100 and H100 as well.
#   cpu: rayproject/ray:2.60.0-py311 and torch's CPU build (no GBs of CUDA libraries).
# EXTRAS adds optional dependencies of pyproject.toml (comma-separated). With llm (vLLM), torch is
# left to vLLM, which requires the version it was built against (vLLM 0.29.0: torch==2.13.0, the
# TORCH_VERSION below, as PyPI's CUDA build on both variants). The llm extra goes on CPU workers
# too: Ray Data runs an LLM processor's multimodal, chat-template and tokenize stages as CPU actors
# that may land on any CPU node, and the multimodal stage imports vLLM (ray/llm/_internal/batch/).
# Layers, from least to most often changed: torch, the dependencies listed in pyproject.toml, the
# source. Editing code rebuilds only the last, small layers.

ARG VARIANT=gpu
ARG GPU_BASE=rayproject/ray:2.60.0-py311-gpu
ARG CPU_BASE=rayproject/ray:2.60.0-py311

FROM ${GPU_BASE} AS base-gpu
ENV UTS_TORCH_INDEX=https://download.pytorch.org/whl/cu126

FROM ${CPU_BASE} AS base-cpu
ENV UTS_TORCH_INDEX=https://download.pytorch.org/whl/cpu

FROM base-${VARIANT}
# The version the Makefile installs locally and infra/aws/cluster.yaml installs on the nodes.
ARG TORCH_VERSION=2.13.0
ARG EXTRAS=""

WORKDIR /home/ray/uts

RUN case ",${EXTRAS}," in \
      *,llm,*) echo "torch: left to vLLM" ;; \
      *) pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${UTS_TORCH_INDEX}" ;; \
    esac

# Only the dependency list, not the code: this layer stays cached until pyproject.toml changes.
COPY --chown=ray:users pyproject.toml ./
COPY --chown=ray:users infra/docker/requirements.py /tmp/requirements.py
RUN python /tmp/requirements.py --extras "${EXTRAS}" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.py /tmp/requirements.txt

# The source, installed in place with nothing left to resolve, so the scripts in jobs/ and the
# installed packages are the same files.
COPY --chown=ray:users README.md ./
COPY --chown=ray:users uts ./uts
COPY --chown=ray:users cluster ./cluster
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users serve ./serve
COPY --chown=ray:users tuning ./tuning
COPY --chown=ray:users stages ./stages
RUN pip install --no-cache-dir --no-deps -e .
