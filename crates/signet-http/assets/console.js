// Signet Console: copy buttons, confirmation dialogs, and showing only the registration fields of
// the chosen authentication method. Everything else is plain HTML forms (and works without this).
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


// Registration form: show the fieldset of the selected method only.
function showMethodFields(select) {
  for (const fieldset of select.form.querySelectorAll("fieldset[data-method]")) {
    fieldset.hidden = fieldset.dataset.method !== select.value;
  }
}
for (const select of document.querySelectorAll("[data-method-select]")) {
  showMethodFields(select);
  select.addEventListener("change", () => showMethodFields(select));
}
