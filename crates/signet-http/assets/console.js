// Signet Console: copy buttons and confirmation dialogs. Everything else is plain HTML forms.
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-copy], [data-open], [data-close]");
  if (!target) return;
  if (target.dataset.copy) {
    const field = document.getElementById(target.dataset.copy);
    field.select();
    navigator.clipboard?.writeText(field.value).then(
      () => { target.textContent = "Copied"; },
      () => { document.execCommand("copy"); target.textContent = "Copied"; },
    );
  } else if (target.dataset.open) {
    document.getElementById(target.dataset.open).showModal();
  } else if (target.dataset.close) {
    document.getElementById(target.dataset.close).close();
  }
});
