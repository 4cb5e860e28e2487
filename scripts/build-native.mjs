// Placeholder replaced by the native backend work; never fails the install.
console.log("circuitscope: native addon not built yet");
