# skyfs - one Makefile.  `make` builds build/skyfs; `make test` runs every
# test; `make asan` builds and tests with AddressSanitizer + UBSan;
# `make demo` sets up and mounts the demo.

BUILD   ?= build
CC      ?= cc
PKGS    := fuse3 libcurl openssl sqlite3 libxxhash expat json-c libssh
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT     ?= -O2 -g
CFLAGS  := $(OPT) -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Wall -Wextra -Werror \
           -Wno-unused-parameter -Wno-format-truncation -MMD -MP $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread $(EXTRA_LDFLAGS)

LIB_SRC := $(wildcard lib/*.c) $(wildcard cache/*.c) $(wildcard backends/*.c) $(wildcard fs/*.c)
TOOL_SRC := $(wildcard tools/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)


.PHONY: all install deps deb test unit integration asan asan-test valgrind-test demo demo-stop bench clean

PREFIX  ?= /usr/local

all: $(BUILD)/skyfs $(BUILD)/mount.skyfs $(BUILD)/unit_tests

# mount(8) runs mount.skyfs for fstab lines of type skyfs
$(BUILD)/mount.skyfs: $(BUILD)/skyfs
	@ln -sf skyfs $@

install: $(BUILD)/skyfs
	install -D -m 0755 $(BUILD)/skyfs $(DESTDIR)$(PREFIX)/bin/skyfs
	install -d $(DESTDIR)/sbin
	ln -sf $(PREFIX)/bin/skyfs $(DESTDIR)/sbin/mount.skyfs

$(BUILD)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

# unit tests read files of the source tree (README.md's example config)
$(UNIT_OBJ): CFLAGS += -DSKY_SOURCE_ROOT='"$(CURDIR)"'

$(BUILD)/libskyfs.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/skyfs: $(TOOL_OBJ) $(BUILD)/libskyfs.a
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libskyfs.a $(LDLIBS)

$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libskyfs.a
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $(UNIT_OBJ) $(BUILD)/libskyfs.a $(LDLIBS)

# The Debian package, built with dpkg-buildpackage and checked with lintian
# (packaging/deb.sh); the .deb lands in build/deb/.
deb:
	@sh packaging/deb.sh

# Installs the system packages and npm test servers that are missing.
deps:
	@sh packaging/install-deps.sh

unit: all
	$(BUILD)/unit_tests

integration: all
	BUILD=$(BUILD) bash tests/run.sh --integration-only

test: deps
	$(MAKE) all
	BUILD=$(BUILD) bash tests/run.sh

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" all

asan-test: deps asan
	BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 bash tests/run.sh

# The integration suite with every skyfs process (the daemon included) under
# valgrind's memcheck; any error or definite leak fails the file that ran it.
valgrind-test: deps all
	BUILD=$(BUILD) SKY_VALGRIND=1 bash tests/run.sh --integration-only

demo: deps all
	@bash packaging/demo.sh

demo-stop:
	@bash packaging/demo.sh --stop

bench: deps all
	@bash tests/bench/run.sh

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
