// The API key box shared by the chat page and the "Can you tell?" page: the key lives in the
// page's memory and is written to localStorage only while "remember" is ticked.
"use strict";
const twinKey = (() => {
  const STORE_KEY = "twin-api-key";
  const input = document.getElementById("key"), remember = document.getElementById("remember");
  const saved = localStorage.getItem(STORE_KEY);
  if (saved) { input.value = saved; remember.checked = true; }
  function sync() {
    if (remember.checked && input.value) localStorage.setItem(STORE_KEY, input.value);
    else localStorage.removeItem(STORE_KEY);
  }
  remember.addEventListener("change", sync);
  input.addEventListener("input", sync);
  return {
    headers() {
      const h = { "Content-Type": "application/json" };
      if (input.value) h["Authorization"] = "Bearer " + input.value;
      return h;
    },
  };
})();
