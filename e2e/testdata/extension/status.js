// Shows what the service worker recorded, for the test to read.
function show() {
  chrome.storage.local.get(null, (all) => {
    document.getElementById("status").textContent = JSON.stringify(all);
  });
}
show();
setInterval(show, 200);
