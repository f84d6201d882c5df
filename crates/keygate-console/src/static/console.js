// Copy buttons, client-configuration downloads, and confirmations. No framework; the
// console works without it except for copying and downloading.
document.addEventListener("click", (ev) => {
  const copy = ev.target.closest("[data-copy]");
  if (copy) {
    const el = document.getElementById(copy.dataset.copy);
    navigator.clipboard.writeText(el.textContent.trim()).then(() => {
      const t = copy.textContent; copy.textContent = "Copied"; setTimeout(() => (copy.textContent = t), 1200);
    });
    ev.preventDefault();
  }
  const dl = ev.target.closest("[data-download]");
  if (dl) {
    const el = document.getElementById(dl.dataset.download);
    const blob = new Blob([el.textContent], { type: "text/plain" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = dl.dataset.filename; a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    ev.preventDefault();
  }
});
document.addEventListener("submit", (ev) => {
  const msg = ev.target.dataset.confirm;
  if (msg && !window.confirm(msg)) ev.preventDefault();
});
