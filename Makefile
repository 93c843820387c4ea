# Backpropagation, Derived: set-up, build and tests.
#   make book   create .venv, install everything, build the HTML book into _build/html
#   make test   the same set-up, then every test: bplib, the notebooks, the build, the browser
#   make lab    open the notebooks in JupyterLab (MyST directives rendered by jupyterlab-myst)
#   make pdf    the printable book, _build/latex/book.pdf (XeLaTeX), and its checks
# Needs python3 (3.11) with venv, npm, and Debian's chromium for the browser checks
# (installed by `make chromium` when run as root), and Debian's XeLaTeX, latexmk and
# poppler-utils for the PDF (installed by `make tex` when run as root).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MATHJAX := _build/extra/_static/mathjax
JB_FLAGS := --all -W -n --keep-going
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with=tests/nbval_sanitize.cfg
JOBS   ?= 2

.PHONY: book test lab unit notebooks build browser bench lint chromium assets freeze clean
.PHONY: pdf pdf-build pdf-check tex

book: $(STAMP) assets
	rm -rf _build/html _build/jupyter_execute _build/.doctrees
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo
	@echo "The book is built. Open this page in a browser (it works offline):"
	@echo "  file://$(CURDIR)/_build/html/index.html"

test: $(STAMP) assets chromium
	$(MAKE) lint unit notebooks build browser
	$(MAKE) pdf

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# MathJax 3 from the npm registry, copied where html_extra_path serves it from; axe-core,
# the accessibility checker that tests/test_browser.py injects, stays in node_modules.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
assets: node_modules/.package-lock.json
	rm -rf $(MATHJAX)
	mkdir -p $(dir $(MATHJAX))
	cp -r node_modules/mathjax/es5 $(MATHJAX)
	# Browsers ask for /favicon.ico on pages without an icon link (the index.html redirect).
	cp _static/favicon.png _build/extra/favicon.ico

chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "The browser checks need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi

# The PDF: Sphinx's LaTeX writer (through Jupyter Book) and latexmk with XeLaTeX, which
# stops at the first LaTeX error; then tests/test_pdf.py reads the PDF and the log.
# When the HTML book was built with the PDF's link (intro.md), the copy beside it is renewed.
# Debian's packages for it, the smallest set that builds it (see README.md).
TEX_PACKAGES := texlive-xetex texlive-fonts-recommended latexmk poppler-utils fonts-dejavu-core
pdf: pdf-build pdf-check

pdf-build: $(STAMP) tex
	rm -rf _build/latex
	mkdir -p _build/extra  # html_extra_path (MathJax) must exist, even for LaTeX
	LATEXMKOPTS="-xelatex -silent" LATEXOPTS="-interaction=nonstopmode -halt-on-error" \
	  $(BIN)/jupyter-book build . --builder pdflatex $(JB_FLAGS) \
	  || { grep -A8 '^!' _build/latex/book.log >&2; exit 1; }
	test -s _build/latex/book.pdf
	if [ -f _build/html/book.pdf ]; then cp _build/latex/book.pdf _build/html/book.pdf; fi

pdf-check: $(STAMP) tex
	BP_PDF_TESTS=1 $(BIN)/python -m pytest tests/test_pdf.py

tex:
	@if command -v dpkg-query >/dev/null 2>&1; then \
	  n=$$(dpkg-query -W -f='$${Status}\n' $(TEX_PACKAGES) 2>/dev/null | grep -c "ok installed"); \
	  [ "$$n" = "$(words $(TEX_PACKAGES))" ]; else command -v xelatex >/dev/null 2>&1; fi \
	|| if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
	else echo "The PDF needs: sudo apt-get install --no-install-recommends $(TEX_PACKAGES)" >&2; exit 1; fi

# Notebook code: at most 88 characters a line, pyflakes and pycodestyle (CONTRIBUTING.md, "Notebooks").
lint: $(STAMP)
	$(BIN)/ruff check bplib tests benchmarks
	$(BIN)/ruff check --line-length 88 --select E,F,W --ignore E731,E741,E402 chapters

unit: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) tests

# One BLAS thread per kernel: JOBS kernels on JOBS cores, not JOBS x cores threads fighting.
notebooks: $(STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(NBVAL) chapters

build: $(STAMP) assets
	rm -rf _build/html _build/jupyter_execute _build/.doctrees
	$(BIN)/jupyter-book build . $(JB_FLAGS)

# The built book in Chromium (axe-core comes from node_modules), then one chapter in JupyterLab.
browser: $(STAMP) node_modules/.package-lock.json
	$(BIN)/python -m pytest -m browser tests/test_browser.py tests/test_lab.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# JupyterLab on the repository, opened at the chapters, with MyST rendering (jupyterlab-myst).
# Root needs --allow-root.
lab: $(STAMP)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) \
	    --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/chapters

# Starter copies of the practice notebooks, solutions removed, in practice/ (git-ignored).
.PHONY: practice
practice: $(STAMP)
	$(BIN)/python tools/make_practice.py $(if $(FORCE),--force)

freeze: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable > constraints.txt

clean:
	rm -rf _build .pytest_cache .hypothesis .ruff_cache
