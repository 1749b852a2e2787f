// MathJax 3 (vendored, SVG output: no web fonts to fetch) typesets what
// pymdownx.arithmatex marks: \( ... \) inline and \[ ... \] display math.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  svg: { fontCache: "global" },
};
