// The web admin's stylesheet, served as /admin/assets/admin.css.
export const ADMIN_STYLE = `* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
header { background: #1f3a5f; color: #fff; padding: .6rem 1.5rem; display: flex; align-items: center; gap: 2rem; flex-wrap: wrap; }
header h1 { font-size: 1.2rem; margin: 0; }
nav { display: flex; gap: 1rem; align-items: center; flex: 1; }
nav a { color: #dfe9f7; text-decoration: none; }
nav a:hover { text-decoration: underline; }
nav .who { margin-left: auto; color: #b9c8dc; }
main { max-width: 64rem; margin: 1.5rem auto; padding: 0 1.5rem; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 .5rem; }
h2.title { font-size: 1.4rem; }
table { width: 100%; border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
th, td { text-align: left; padding: .45rem .7rem; border-bottom: 1px solid #e6e8ec; }
th { background: #eef1f5; font-weight: 600; }
button { font: inherit; padding: .3rem .75rem; border: 1px solid #1f3a5f; background: #fff; color: #1f3a5f; border-radius: .25rem; cursor: pointer; margin-right: .3rem; }
button:hover { background: #e8eef7; }
button[type=submit] { background: #2b6cb0; border-color: #2b6cb0; color: #fff; }
button.danger { border-color: #b83232; color: #b83232; }
nav button { border-color: #dfe9f7; background: transparent; color: #dfe9f7; }
input { font: inherit; padding: .3rem .5rem; border: 1px solid #b8bfca; border-radius: .25rem; }
form.inline { display: flex; gap: 1rem; align-items: end; margin-bottom: 1rem; flex-wrap: wrap; }
form.inline label, form.login label { display: flex; flex-direction: column; font-size: .85rem; }
form.login { max-width: 22rem; display: flex; flex-direction: column; gap: .8rem; background: #fff; padding: 1.2rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr)); gap: .8rem; }
.card { background: #fff; padding: .6rem .9rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card h2 { font-size: .8rem; color: #5a6478; margin: 0; text-transform: uppercase; letter-spacing: .04em; }
.card p { font-size: 1.5rem; margin: .2rem 0 0; }
.history { display: flex; align-items: flex-end; gap: 3px; height: 5rem; background: #fff; padding: .4rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.bar { display: inline-block; width: 1rem; background: #2b6cb0; }
.bar[data-level="0"] { height: 2%; }
.bar[data-level="1"] { height: 10%; }
.bar[data-level="2"] { height: 20%; }
.bar[data-level="3"] { height: 30%; }
.bar[data-level="4"] { height: 40%; }
.bar[data-level="5"] { height: 50%; }
.bar[data-level="6"] { height: 60%; }
.bar[data-level="7"] { height: 70%; }
.bar[data-level="8"] { height: 80%; }
.bar[data-level="9"] { height: 90%; }
.bar[data-level="10"] { height: 100%; }
.muted { color: #5a6478; }
#message { padding: .5rem .8rem; border-radius: .25rem; }
#message.good { background: #e3f4e7; color: #1d5a2c; }
#message.bad { background: #fbe4e4; color: #8a1f1f; }
code { background: #eef1f5; padding: 0 .25rem; }
`;
