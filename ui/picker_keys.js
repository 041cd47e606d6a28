// The model picker is Gradio's Dropdown, which opens its list whenever its input gains focus. A Tab that only
// passes through should not open it (ArrowDown still does), and a list left open closes once focus moves on.
// Registered once per page.
if (!window.__stepgenPickerKeys) {
  window.__stepgenPickerKeys = true;
  let tabbing = false;
  document.addEventListener("keydown", (event) => { tabbing = event.key === "Tab"; }, true);
  document.addEventListener("pointerdown", () => { tabbing = false; }, true);
  const picker = (target) => target && target.closest && target.closest("#model-picker input");
  // the Dropdown closes its list on Escape; sent after its own focus handler has opened it
  const close = (input) => setTimeout(() => input.dispatchEvent(
    new KeyboardEvent("keydown", { key: "Escape", bubbles: true })), 0);
  document.addEventListener("focusin", (event) => {
    const input = picker(event.target);
    if (input && tabbing) close(input);
  });
  document.addEventListener("focusout", (event) => {
    const input = picker(event.target);
    if (input) close(input);
  });
}
