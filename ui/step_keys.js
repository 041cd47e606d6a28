// Step-by-step tab keyboard: 1-9 append the n-th candidate, 'u' or Backspace undoes.
// Only while the tab is shown and the focus is not in a text field; registered once per page.
if (!window.__stepgenStepKeys) {
  window.__stepgenStepKeys = true;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const target = event.target;
    if (target && target.closest && target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']")) return;
    const candidates = document.querySelector("#step-candidates");
    if (!candidates || candidates.offsetParent === null) return; // another tab is shown
    if (/^[1-9]$/.test(event.key)) {
      const chip = candidates.querySelectorAll("[data-token]")[Number(event.key) - 1];
      if (chip) {
        event.preventDefault();
        chip.click();
      }
    } else if (event.key === "u" || event.key === "Backspace") {
      const undo = document.querySelector("#step-undo");
      if (undo) {
        event.preventDefault();
        undo.click();
      }
    }
  });
}
