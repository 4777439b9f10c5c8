# pionrl build. `make` builds ./pionrl (CPU, OpenBLAS); `make test` runs the test suite;
# `make bench` runs the benchmarks; `make CUDA=1` adds the CUDA backend; `make asan` runs the
# tests under AddressSanitizer + UBSan. BUILD=dir puts objects elsewhere (parallel work trees).
# `make CUDA=emu test` builds the CUDA backend against the CPU emulator in tests/cuda_emu/ (no GPU,
# no CUDA toolkit) so its tests run anywhere; `make test` runs the CUDA tests that way too.

CUDA    ?= 0
# CUDA objects live apart from CPU ones (same sources, other flags).
ifeq ($(CUDA),1)
  BUILD ?= build-cuda
else ifeq ($(CUDA),emu)
  BUILD ?= build-emu
else
  BUILD ?= build
endif
DEFAULT_BUILD = $(if $(filter 1,$(CUDA)),build-cuda,build)
CC      ?= cc
CXX     ?= c++
NVCC    ?= /usr/local/cuda/bin/nvcc
OPT     ?= -O3 -march=native
SAN     ?=

# -ffp-contract=fast: ISO C mode would otherwise forbid fusing a*b+c into FMA instructions.
# -fno-math-errno: sqrtf & co. need not set errno (nothing here reads it after a math call), so
# they compile to single instructions inside vectorised loops (AdamW: 40 -> 9 ms per 10M params).
# -fno-trapping-math: nothing here reads floating-point exception flags, so a comparison may run
# unconditionally; without it GCC cannot if-convert exp_fast's clamp and every exp loop (softmax,
# log-softmax, sampling) stays scalar (log-softmax over 8192 logits: 10x slower). Clang's default.
CFLAGS   = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
           -ffp-contract=fast -fno-math-errno -fno-trapping-math -fopenmp $(OPT) $(SAN) -MMD -MP -Isrc -I$(BLAS_DIR:/usr/lib/%=/usr/include/%)
CXXFLAGS = -std=c++17 -Wall -fopenmp $(OPT) $(SAN) -MMD -MP -Isrc
# OpenBLAS's OpenMP build shares libgomp's thread pool with our own OpenMP loops; the pthread build
# would oversubscribe the cores (measured: a third of a training step spent spinning).
BLAS_DIR = /usr/lib/x86_64-linux-gnu/openblas-openmp
LDLIBS   = -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -l:libopenblas.so.0 -lcjson -lcurl -lpcre2-8 -lutf8proc -lsentencepiece -lstdc++ -lm -lpthread -ldl
LDFLAGS  = -fopenmp $(SAN)

SRC_DIRS = src/core src/policy src/rl src/optim src/reward
LIB_C    = $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
LIB_CXX  = $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.cc))
CLI_C    = $(wildcard src/cli/*.c)

ifeq ($(CUDA),1)
  CUDA_HOME ?= /usr/local/cuda
  LIB_CU   = $(wildcard src/*/cuda/*.cu)
  CFLAGS  += -DPIONRL_CUDA=1 -I$(CUDA_HOME)/include
  CXXFLAGS+= -DPIONRL_CUDA=1 -I$(CUDA_HOME)/include
  # one stream for every launch and copy (the per-thread default stream), so decode steps can be captured as graphs
  NVFLAGS  = -O3 -std=c++17 -Isrc -DPIONRL_CUDA=1 -gencode arch=compute_80,code=sm_80 \
             -gencode arch=compute_90,code=sm_90 --default-stream per-thread -MMD -MP
  LDLIBS  += -L$(CUDA_HOME)/lib64 -lcudart -lcublas -lcublasLt -lcusolver
endif
ifeq ($(CUDA),emu)
  LIB_CU   = $(wildcard src/*/cuda/*.cu)
  EMU_OBJ  = $(BUILD)/tests/cuda_emu/cuda_emu.o
  CFLAGS  += -DPIONRL_CUDA=1
  CXXFLAGS+= -DPIONRL_CUDA=1
  EMUFLAGS = $(CXXFLAGS) -Wno-unused-function -Itests/cuda_emu -I$(BLAS_DIR:/usr/lib/%=/usr/include/%)
endif

LIB_OBJ  = $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_CXX:%.cc=$(BUILD)/%.o) $(LIB_CU:%.cu=$(BUILD)/%.o) $(EMU_OBJ)
CLI_OBJ  = $(CLI_C:%.c=$(BUILD)/%.o)
LIB      = $(BUILD)/libpionrl.a
BIN      = $(BUILD)/pionrl

TEST_SRC = $(wildcard tests/test_*.c)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC= $(wildcard bench/bench_*.c)
BENCH_BIN= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test emu-tests asan bench demo demo-compare cuda-memcheck clean

all: pionrl

# ./pionrl is always the default (CPU or CUDA=1) build of the current tree.
pionrl: $(BIN)
	@if [ "$(BUILD)" = "$(DEFAULT_BUILD)" ]; then cp $(BIN) pionrl; fi

deps:
	@bash tools/install-deps.sh

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

ifeq ($(CUDA),emu)
# The emulator's C++: kernel launches rewritten into calls (tests/cuda_emu/translate.pl), then g++.
$(BUILD)/%.o: %.cu tests/cuda_emu/translate.pl
	@mkdir -p $(dir $@)
	perl tests/cuda_emu/translate.pl $< > $(BUILD)/$*.cu.cpp
	$(CXX) $(EMUFLAGS) -x c++ -c $(BUILD)/$*.cu.cpp -o $@

$(EMU_OBJ): tests/cuda_emu/cuda_emu.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(EMUFLAGS) -c $< -o $@
else
$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@
endif

$(BUILD)/tests/%: tests/%.c tests/test.h tests/test_gpu.h tests/qwen_tiny.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

# A CPU `make test` also runs the tests that reach the CUDA backend, built against the CPU emulator
# (tests/cuda_emu/) in $(BUILD)-emu, so the device code runs in every CI pass.
EMU_TESTS = test_cuda_ops test_cuda_attention test_cuda_optim test_cuda_model test_cuda_sampler test_train test_generate_cli
# The kernel tests run a second time with the emulator's threads and blocks in reverse order: a missing barrier
# shows in one order or the other depending on which thread reads what another wrote.
EMU_REVERSE = test_cuda_ops test_cuda_attention test_cuda_optim test_cuda_sampler
ifeq ($(CUDA),0)
  EMU_BIN = $(EMU_TESTS:%=$(BUILD)-emu/tests/%)
  EMU_RUN = $(EMU_BIN) $(EMU_REVERSE:%=PIONRL_EMU_ORDER=reverse:$(BUILD)-emu/tests/%)
endif

test: deps $(BIN) $(TEST_BIN) $(if $(EMU_RUN),emu-tests)
	@bash tests/run.sh $(BUILD) $(EMU_RUN)

emu-tests:
	@$(MAKE) --no-print-directory CUDA=emu BUILD=$(BUILD)-emu $(BUILD)-emu/pionrl $(EMU_BIN)

asan:
	$(MAKE) BUILD=$(if $(filter emu,$(CUDA)),build-asan-emu,build-asan) OPT="-O1 -g -fno-omit-frame-pointer" \
	        SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# The CUDA tests under compute-sanitizer's memcheck (a GPU machine with the CUDA toolkit).
SANITIZER ?= $(firstword $(wildcard /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer) compute-sanitizer)
# Every CUDA test under compute-sanitizer memcheck, and the kernels that share memory between threads
# (flash attention, decode attention and the other ops, the sampler) under racecheck and synccheck too. Needs a GPU.
CUDA_TESTS = test_cuda_ops test_cuda_attention test_cuda_optim test_cuda_model test_cuda_sampler
cuda-memcheck:
	$(MAKE) CUDA=1 $(CUDA_TESTS:%=build-cuda/tests/%)
	@command -v $(SANITIZER) >/dev/null || { echo "cuda-memcheck: compute-sanitizer not found (CUDA toolkit); set SANITIZER=path"; exit 1; }
	set -e; for t in $(CUDA_TESTS); do $(SANITIZER) --tool memcheck --error-exitcode 1 build-cuda/tests/$$t; done
	set -e; for tool in racecheck synccheck; do for t in test_cuda_ops test_cuda_attention test_cuda_sampler; do \
	  $(SANITIZER) --tool $$tool --error-exitcode 1 build-cuda/tests/$$t; done; done

bench: deps $(BIN) $(BENCH_BIN)
	@bash bench/run.sh $(BUILD)

# The embedded demo (docs/DEMO.md): shipped base model -> RLVR (GRPO + per-head Pion) -> report.
demo: deps pionrl
	@bash tools/demo_run.sh $(BIN)

# The same run with AdamW, Muon and Pion into runs/demo-<optimizer>, one report on shared axes.
demo-compare: deps pionrl
	$(BIN) compare configs/demo.json --out runs/demo-compare.html

clean:
	rm -rf build build-* pionrl

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
