// qvl-agent report: one step at a time, with the thumbnail strip and the keyboard; works
// from a local file, with no network.
(function () {
  document.documentElement.classList.add("js");
  var steps = Array.prototype.slice.call(document.querySelectorAll("section.step"));
  var thumbs = Array.prototype.slice.call(document.querySelectorAll(".thumb"));
  if (!steps.length) return;
  var shown = 0;
  function show(i, scroll) {
    shown = Math.max(0, Math.min(steps.length - 1, i));
    steps.forEach(function (s, j) { s.classList.toggle("shown", j === shown); });
    thumbs.forEach(function (t, j) { t.classList.toggle("shown", j === shown); });
    var thumb = thumbs[shown];
    if (thumb && scroll !== false) thumb.scrollIntoView({block: "nearest", inline: "nearest"});
    if (history.replaceState) history.replaceState(null, "", "#" + steps[shown].id);
  }
  thumbs.forEach(function (t, j) {
    t.addEventListener("click", function (e) { e.preventDefault(); show(j); });
  });
  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var k = e.key;
    if (k === "ArrowRight" || k === "j") show(shown + 1);
    else if (k === "ArrowLeft" || k === "k") show(shown - 1);
    else if (k === "Home") show(0);
    else if (k === "End") show(steps.length - 1);
    else return;
    e.preventDefault();
  });
  var start = steps.findIndex(function (s) { return "#" + s.id === location.hash; });
  show(start < 0 ? 0 : start, false);
})();
