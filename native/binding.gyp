{
  "targets": [
    {
      "target_name": "circuitscope_native",
      "sources": ["src/addon.c", "src/gemm.c", "src/ops.c", "src/pool.c", "src/peak.c", "src/attention.c"],
      "cflags": ["-std=gnu11", "-O3", "-fno-math-errno", "-fPIC", "-Wall", "-Wno-unused-function"],
      "cflags!": ["-O2", "-O0", "-Os"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lm", "-lpthread"],
      "conditions": [
        ["OS=='mac'", { "xcode_settings": { "OTHER_CFLAGS": ["-std=gnu11", "-O3"], "GCC_OPTIMIZATION_LEVEL": "3" } }]
      ]
    }
  ]
}
