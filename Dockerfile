# Pedigree: the gateway (`pedigree serve`) and the inference worker (`pedigree worker`) in one
# image, built by the same scripts the README uses.
#   docker build -t pedigree .                                   CPU
#   docker build -t pedigree-cuda --build-arg CUDA=on \
#       --build-arg RUNTIME_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu24.04 .   CUDA (llama.cpp built with nvcc)
ARG SWIFT_IMAGE=swift:6.3.1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
ARG CUDA=off
WORKDIR /src
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv cmake \
    && if [ "$CUDA" = "on" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nvidia-cuda-toolkit; fi \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# llama.cpp (CUDA when nvcc is on the PATH), GraphiQL's files, the build packages.
RUN script/bootstrap --build-only
RUN CONFIG=release script/build --static-swift-stdlib
RUN mkdir -p /out/lib /out/share \
    && cp .build/release/pedigree /out/ \
    && cp -P .deps/llama/lib/*.so* /out/lib/ \
    && cp -r .deps/graphiql /out/share/graphiql

FROM ${RUNTIME_IMAGE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        libgit2-1.5 libsqlite3-0 libgomp1 libstdc++6 zlib1g ca-certificates git \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/pedigree /usr/local/bin/pedigree
COPY --from=build /out/lib/ /usr/local/lib/pedigree/
COPY --from=build /out/share/graphiql /usr/local/share/pedigree/graphiql
ENV LD_LIBRARY_PATH=/usr/local/lib/pedigree
# The cache (Git mirror, artifacts, ledger, keys) lives on a volume.
RUN mkdir -p /var/cache/pedigree && chown 65532:65532 /var/cache/pedigree
USER 65532:65532
VOLUME /var/cache/pedigree
EXPOSE 8080 9090
ENTRYPOINT ["pedigree"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--cache", "/var/cache/pedigree", "--graphiql-assets", "/usr/local/share/pedigree/graphiql"]
