// Search results of the course website: the snippet under each result shows the page's text
// without its raw LaTeX.  Sphinx's search (searchtools.js, on search.html only) builds a
// snippet from the text of the page's HTML, where math is still TeX source (MathJax typesets it
// in the browser); this wraps Search.htmlToText so that each math element is left out and
// replaced by an ellipsis.  On other pages (no Search object) it does nothing.
(function () {
  function patch() {
    if (typeof Search === "undefined" || !Search.htmlToText || Search._courseSnippets) return;
    const original = Search.htmlToText;
    Search.htmlToText = function (htmlString, anchor) {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll(".math, mjx-container, script[type^='math/']").forEach((element) => {
        element.replaceWith(doc.createTextNode(" … "));
      });
      return original(doc.documentElement.outerHTML, anchor);
    };
    Search._courseSnippets = true;
  }
  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();
