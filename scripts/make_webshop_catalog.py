"""Write the shipped WebShop catalog, ``agent_rl/envs/webshop/data/catalog.json``.

Deterministic (one seeded generator, no network): running it twice writes the same bytes. It
builds products in WebShop's five categories (beauty, electronics, fashion, food, furniture),
eight product types each, twelve products per type, in WebShop's raw item format (``asin``,
``name``, ``query``, ``category``, ``product_category``, ``pricing``, ``full_description``,
``small_description``, ``customization_options``) with the ``items_ins_v2`` annotations inline
(``attributes``, ``instruction``, ``instruction_attributes``) plus ``reviews`` and ``rating``.

Products of one type share an attribute pool, so they are each other's realistic distractors;
the generator checks that a product's text never contains an attribute of its type that it does
not have, and that no two attributes of a type fuzzy-match each other (the reward's rule).

    python scripts/make_webshop_catalog.py [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_rl.envs.webshop.fuzz import token_set_ratio  # noqa: E402
from agent_rl.envs.webshop.reward import option_matches  # noqa: E402

SEED = 20240601
PER_TYPE = 12
OUT = ROOT / "agent_rl" / "envs" / "webshop" / "data" / "catalog.json"

BRANDS = {
    "fashion": ["Stridelite", "Norvane", "Coastline Co.", "Urban Thread", "Peakform", "Willow & Fern",
                "Ashbury", "Trailmark", "Luma Active", "Harbor Knit", "Solstice", "Redwood Supply"],
    "beauty": ["Lumiere Botanics", "Pure Petal", "Verdance", "Glowhaus", "Aster & Sage", "Calma Skin",
               "Nuvelle", "Brightleaf", "Oakmoss Lab", "Silkroot", "Dewdrop", "Mira Beauty"],
    "electronics": ["Voltix", "Sonaro", "Kinetra", "ByteWave", "Auralink", "Zentro", "Novatek",
                    "Pulsegear", "Lumacell", "Corelink", "Arcwise", "Tekmo"],
    "food": ["Harvest Lane", "Green Valley Farms", "Kettle & Leaf", "Summit Pantry", "Olive Grove Co.",
             "Trailfuel", "Cocoa Ridge", "Prairie Gold", "Sunny Orchard", "Wildroot Foods", "Bramble Hill",
             "Copper Kettle"],
    "furniture": ["Oakhaven", "Nordlys Home", "Cedar & Co.", "Loftline", "Hearthwood", "Modulo",
                  "Brookside Living", "Stonebridge", "Kinfolk Furnishings", "Alder Lane", "Haven Works",
                  "Urbanest"],
}  # fmt: skip

# Generic feature lines per category; they must not contain any attribute of the category's types.
GENERIC_BULLETS = {
    "fashion": ["SATISFACTION PROMISE: Free exchanges within 30 days if the fit is not right.",
                "CARE: Wash inside out with like colors and hang to dry to keep the shape.",
                "GIFT IDEA: A practical present for birthdays, holidays and everyday wear."],
    "beauty": ["MADE IN SMALL BATCHES: Formulated and filled in our own facility.",
               "HOW TO USE: Apply as directed; for external use only.",
               "OUR PROMISE: If you are not happy, contact us for a full refund."],
    "electronics": ["WHAT YOU GET: The product, a user manual and friendly customer service.",
                    "WARRANTY: 18-month warranty and lifetime technical support.",
                    "SAFETY: Certified and tested to meet international safety standards."],
    "food": ["STORAGE: Keep in a cool, dry place away from direct sunlight.",
             "FAMILY OWNED: Sourced and packed by a family business since 1987.",
             "SNACK TIME: Great for lunch boxes, road trips and the office pantry."],
    "furniture": ["WHAT YOU GET: All hardware, tools and a step-by-step manual are included.",
                  "CUSTOMER CARE: Reach our support team any day for help with parts.",
                  "EASY CARE: Wipe clean with a soft, damp cloth."],
}  # fmt: skip

REVIEW_TITLES = {
    5: ["Love it", "Exactly as described", "Great quality", "Highly recommend", "Five stars", "Perfect"],
    4: ["Very good", "Solid choice", "Happy with it", "Good value", "Nice, with one small issue"],
    3: ["It's okay", "Decent for the price", "Mixed feelings", "Average"],
    2: ["Not great", "Disappointed", "Expected more"],
    1: ["Returned it", "Would not buy again"],
}
REVIEW_OPENERS = {
    5: [
        "Bought the {n} a month ago and use it every day.",
        "Best {n} I have tried so far.",
        "Really impressed with the {n}.",
    ],
    4: ["Overall happy with the {n}.", "Good {n} for everyday use.", "Pretty happy with the {n}."],
    3: ["Nothing special about the {n}, but fine.", "Some things I like about the {n}, some I don't."],
    2: ["Expected better {n} for this price.", "I wanted to like the {n}."],
    1: ["Mine arrived damaged and the replacement was no better.", "Not happy with the {n} at all."],
}
REVIEW_CLOSERS = {
    5: ["Will buy again.", "Worth every penny.", "Fast shipping too."],
    4: ["Would recommend.", "Good for the price.", "Shipping took a few extra days."],
    3: ["Might look for something else next time.", "It's okay for occasional use."],
    2: ["Quality control needs work.", "Not worth the price in my opinion."],
    1: ["Save your money.", "Customer service never answered."],
}  # fmt: skip

# Each type: category, query, product_category, goal noun (article: singular countable), title
# cores and tails, attribute pools by kind (adj: before the noun; feat: "with ..."; use: "for ..."),
# each with a feature sentence, options (name -> values), price range, description intro and the
# noun used in reviews.
TYPES = [
    # ---------------------------------------------------------------- fashion
    dict(category="fashion", query="men's running shoes",
         path="Clothing, Shoes & Jewelry › Men › Shoes › Athletic › Running",
         noun="men's running shoes", article=False, review_noun="shoes",
         cores=["Men's Running Shoes", "Mens Road Running Sneakers", "Men's Athletic Running Shoes"],
         tails=["Athletic Sneakers for Gym and Jogging", "Sport Trainers for Road Running",
                "Tennis Walking Shoes"],
         adj={"lightweight": "Weighs under 9 ounces per shoe so every stride feels quick.",
              "breathable": "An engineered knit upper lets air flow on warm days.",
              "non slip": "A grippy tread pattern holds firm on wet pavement.",
              "shock absorbing": "A springy midsole softens each heel strike."},
         feat={"rubber sole": "The durable outsole is built to last hundreds of miles.",
               "memory foam insole": "The cushioned footbed molds to the shape of your foot.",
               "arch support": "A contoured footbed keeps flat feet comfortable on long runs.",
               "wide toe box": "Extra room up front lets toes spread naturally."},
         use={}, options={"color": ["Black", "White", "Navy Blue", "Grey", "Red", "Black/White"],
                          "size": ["7", "8", "9", "10", "11", "12", "13"]},
         price=(39, 119),
         intro="Built for daily miles, these running shoes pair a supportive fit with a modern look."),
    dict(category="fashion", query="women's yoga leggings",
         path="Clothing, Shoes & Jewelry › Women › Clothing › Active › Active Leggings",
         noun="women's yoga leggings", article=False, review_noun="leggings",
         cores=["Women's Yoga Leggings", "Womens Workout Leggings", "Yoga Pants for Women"],
         tails=["Athletic Tights for Gym and Pilates", "Running Tights for Women", "Everyday Active Pants"],
         adj={"high waisted": "The wide waistband sits above the navel and stays put.",
              "squat proof": "Dense fabric stays opaque through deep bends.",
              "moisture wicking": "Sweat is pulled away from the skin so you stay dry.",
              "buttery soft": "The brushed fabric feels smooth against the skin."},
         feat={"tummy control": "A double layer front panel smooths and shapes.",
               "side pockets": "Two deep pockets hold a phone or keys during a workout.",
               "four way stretch": "The fabric moves with you in every direction."},
         use={},
         options={"color": ["Black", "Navy", "Charcoal Grey", "Olive Green", "Burgundy", "Dusty Pink"],
                          "size": ["X-Small", "Small", "Medium", "Large", "X-Large"]},
         price=(18, 49),
         intro="Made for studio sessions and busy days, these leggings keep up with every move."),
    dict(category="fashion", query="men's t-shirt",
         path="Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts",
         noun="men's t-shirt", article=True, review_noun="shirts",
         cores=["Men's Cotton T-Shirt", "Mens Everyday Tee Shirt", "Men's Basic T-Shirt"],
         tails=["Casual Top for Men", "Essential Undershirt", "Classic Summer Tee"],
         adj={"tagless": "A printed label means no itchy tag at the neck.",
              "pre shrunk": "The cotton is treated so the shirt keeps its size after washing.",
              "slim fit": "Tailored through the chest and waist for a modern shape.",
              "wrinkle resistant": "Comes out of the dryer ready to wear."},
         feat={"crew neck": "A ribbed round neckline keeps its shape.",
               "chest pocket": "A small patch pocket adds a casual touch.",
               "short sleeve": "Sleeves end above the elbow for warm days."},
         use={}, options={"color": ["White", "Black", "Heather Grey", "Navy", "Olive", "Maroon"],
                          "size": ["Small", "Medium", "Large", "X-Large", "XX-Large"]},
         price=(12, 32), intro="A wardrobe staple cut from soft cotton jersey for everyday comfort."),
    dict(category="fashion", query="women's summer dress",
         path="Clothing, Shoes & Jewelry › Women › Clothing › Dresses › Casual",
         noun="women's summer dress", article=True, review_noun="dresses",
         cores=["Women's Summer Dress", "Womens Casual Sundress", "Summer Beach Dress for Women"],
         tails=["Party Dress for Vacation", "Casual Dress for Women", "Holiday Sundress"],
         adj={"sleeveless": "Open shoulders keep you cool on the hottest days.",
              "knee length": "The hem falls just at the knee for an easy look.",
              "flowy": "A loose A-line skirt moves with every step."},
         feat={"v neck": "A flattering neckline frames the face.",
               "pockets": "Hidden seam pockets fit a phone.",
               "elastic waist": "The stretchy waist gives a comfortable fit.",
               "adjustable straps": "Straps can be shortened or lengthened for the best fit."},
         use={}, options={"color": ["Floral Blue", "Black", "Red", "Yellow", "White", "Green Floral"],
                          "size": ["Small", "Medium", "Large", "X-Large"]},
         price=(22, 58), intro="An airy dress for beach days, brunch and summer evenings."),
    dict(category="fashion", query="men's winter jacket",
         path="Clothing, Shoes & Jewelry › Men › Clothing › Jackets & Coats › Down Jackets & Parkas",
         noun="men's winter jacket", article=True, review_noun="jackets",
         cores=["Men's Winter Jacket", "Mens Puffer Coat", "Men's Warm Winter Coat"],
         tails=["Outdoor Parka for Cold Weather", "Snow Coat for Men", "Hiking Outerwear"],
         adj={"waterproof": "Sealed seams and a coated shell keep rain and snow out.",
              "windproof": "A tightly woven shell blocks icy gusts.",
              "packable": "Folds into its own pocket for travel."},
         feat={"detachable hood": "The hood zips off when you do not need it.",
               "fleece lining": "A plush inner layer traps body heat.",
               "zipper pockets": "Secure pockets keep gloves and keys safe.",
               "thumb holes": "Cuffs with thumb loops seal out drafts."},
         use={}, options={"color": ["Black", "Navy", "Army Green", "Khaki", "Grey"],
                          "size": ["Medium", "Large", "X-Large", "XX-Large"]},
         price=(49, 159), intro="Stay warm on frosty commutes and weekend hikes in this insulated coat."),
    dict(category="fashion", query="women's sandals",
         path="Clothing, Shoes & Jewelry › Women › Shoes › Sandals › Flat Sandals",
         noun="women's sandals", article=False, review_noun="sandals",
         cores=["Women's Flat Sandals", "Womens Summer Sandals", "Sandals for Women"],
         tails=["Beach Shoes for Summer", "Casual Slides for Women", "Dressy Flats"],
         adj={"open toe": "An airy front keeps feet cool.",
              "non slip": "A textured outsole grips smooth floors.",
              "waterproof": "Rinse off sand and water with no damage."},
         feat={"ankle strap": "A strap around the ankle keeps the sandal secure.",
               "buckle closure": "A metal buckle adjusts the fit.",
               "arch support": "A contoured footbed supports the arch all day.",
               "memory foam footbed": "A cushioned insole molds to your foot."},
         use={}, options={"color": ["Black", "Brown", "Tan", "White", "Gold", "Silver"],
                          "size": ["6", "7", "8", "9", "10", "11"]},
         price=(19, 69), intro="Easy summer sandals that go from the boardwalk to dinner."),
    dict(category="fashion", query="men's pullover hoodie",
         path="Clothing, Shoes & Jewelry › Men › Clothing › Fashion Hoodies & Sweatshirts",
         noun="men's pullover hoodie", article=True, review_noun="hoodies",
         cores=["Men's Pullover Hoodie", "Mens Hooded Sweatshirt", "Men's Casual Hoodie"],
         tails=["Sweatshirt for Men", "Lounge Top for Fall", "Gym Pullover"],
         adj={"fleece lined": "A brushed interior keeps you warm.",
              "heavyweight": "Thick 12 ounce fabric holds its shape.",
              "oversized": "A roomy cut layers easily."},
         feat={"kangaroo pocket": "A front pouch pocket warms your hands.",
               "drawstring hood": "Pull the cords to close the hood.",
               "ribbed cuffs": "Snug cuffs and hem keep out the cold."},
         use={}, options={"color": ["Black", "Charcoal", "Navy", "Burgundy", "Forest Green", "Oatmeal"],
                          "size": ["Small", "Medium", "Large", "X-Large", "XX-Large"]},
         price=(24, 64), intro="A cozy layer for cool mornings, errands and evenings at home."),
    dict(category="fashion", query="athletic socks",
         path="Clothing, Shoes & Jewelry › Men › Clothing › Socks › Athletic Socks",
         noun="athletic socks", article=False, review_noun="socks",
         cores=["Athletic Crew Socks", "Crew Sport Socks", "Performance Running Socks"],
         tails=["Socks for Men and Women", "Training Socks Multipack", "Everyday Sport Socks"],
         adj={"cushioned": "A padded sole softens every step.",
              "moisture wicking": "The knit pulls sweat away from the foot.",
              "anti blister": "Seamless toes prevent rubbing."},
         feat={"arch compression": "A snug band hugs the arch.",
               "reinforced heel": "A thicker heel lasts longer."},
         use={}, options={"color": ["White", "Black", "Grey", "Multicolor"],
                          "size": ["Shoe Size 6-9", "Shoe Size 9-12", "Shoe Size 12-15"]},
         price=(9, 29), intro="Six pairs of everyday socks built for the gym, the trail and the office."),
    # ---------------------------------------------------------------- beauty
    dict(category="beauty", query="shampoo",
         path="Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos",
         noun="shampoo", article=False, review_noun="shampoo",
         cores=["Daily Shampoo", "Moisturizing Shampoo", "Salon Formula Shampoo"],
         tails=["Hair Wash for Women and Men", "Shampoo for All Hair Types", "Gentle Cleansing Formula"],
         adj={"sulfate free": "Cleans without harsh detergents.",
              "paraben free": "Made without preservatives of that kind.",
              "color safe": "Protects dyed hair from fading.",
              "cruelty free": "Never tested on animals."},
         feat={"argan oil": "Rich in nourishing oil from Morocco.",
               "biotin": "A vitamin blend that helps thin hair look fuller.",
               "keratin": "A protein that smooths frizz."},
         use={"dry hair": "Restores moisture to brittle strands.",
              "oily scalp": "Balances the scalp between washes."},
         options={"size": ["8 Fl Oz", "12 Fl Oz", "16 Fl Oz", "32 Fl Oz"],
                  "scent": ["Unscented", "Lavender", "Coconut", "Eucalyptus Mint"]},
         price=(7, 34), intro="A gentle, salon quality shampoo for soft, shiny hair."),
    dict(category="beauty", query="face moisturizer",
         path="Beauty & Personal Care › Skin Care › Face › Creams & Moisturizers › Face Moisturizers",
         noun="face moisturizer", article=True, review_noun="moisturizer",
         cores=["Face Moisturizer", "Daily Facial Moisturizing Cream", "Hydrating Face Lotion"],
         tails=["Cream for Women and Men", "Day and Night Face Cream", "Lightweight Facial Lotion"],
         adj={"oil free": "Absorbs quickly without a greasy feel.",
              "fragrance free": "No added perfume.",
              "non comedogenic": "Will not clog pores.",
              "hypoallergenic": "Dermatologist tested for reactive skin."},
         feat={"hyaluronic acid": "Draws water into the skin for lasting hydration.",
               "spf 30": "Broad spectrum protection for daytime.",
               "vitamin c": "Brightens dull, uneven tone.",
               "niacinamide": "Helps refine the look of pores."},
         use={"sensitive skin": "Gentle enough for easily irritated skin."},
         options={"size": ["1.7 Fl Oz", "2.5 Fl Oz", "3.4 Fl Oz"]},
         price=(9, 45), intro="A daily cream that leaves skin soft, smooth and comfortable."),
    dict(category="beauty", query="lipstick",
         path="Beauty & Personal Care › Makeup › Lips › Lipstick",
         noun="lipstick", article=True, review_noun="lipstick",
         cores=["Lipstick", "Creamy Lip Color", "Satin Lipstick"],
         tails=["Makeup for Women", "Lip Color Stick", "Everyday Lip Makeup"],
         adj={"long lasting": "Color stays put for up to 12 hours.",
              "matte": "A velvety finish with no shine.",
              "transfer proof": "Will not smudge onto cups.",
              "vegan": "Formulated with no animal ingredients."},
         feat={"vitamin e": "Keeps lips from drying out.",
               "shea butter": "Adds a conditioning cushion."},
         use={}, options={"color": ["Ruby Red", "Nude Pink", "Berry", "Coral", "Mauve", "Plum", "Brick"]},
         price=(6, 28), intro="Rich, even color in one swipe with a comfortable feel."),
    dict(category="beauty", query="deodorant",
         path="Beauty & Personal Care › Personal Care › Deodorants & Antiperspirants › Deodorants",
         noun="deodorant", article=False, review_noun="deodorant",
         cores=["Natural Deodorant", "Deodorant Stick", "Everyday Deodorant"],
         tails=["for Women and Men", "Odor Protection Stick", "Underarm Care"],
         adj={"aluminum free": "Lets your body sweat naturally.",
              "baking soda free": "Formulated without a common irritant.",
              "unscented": "No fragrance at all."},
         feat={"coconut oil": "Glides on smoothly.",
               "charcoal": "Helps absorb moisture."},
         use={"sensitive skin": "Kind to delicate underarms."},
         options={"size": ["2.6 Ounce", "3 Ounce", "3 Ounce (Pack of 2)"],
                  "scent": ["Lavender", "Citrus", "Cedarwood", "Rose", "Fresh Cucumber"]},
         price=(6, 22), intro="All day freshness from a clean, simple formula."),
    dict(category="beauty", query="nail polish",
         path="Beauty & Personal Care › Foot, Hand & Nail Care › Nail Art & Polish › Nail Polish",
         noun="nail polish", article=False, review_noun="polish",
         cores=["Nail Polish", "Nail Lacquer", "Nail Color"],
         tails=["Manicure Polish for Women", "Salon Nail Lacquer", "At Home Manicure Color"],
         adj={"quick dry": "Sets in about sixty seconds.",
              "chip resistant": "Wears for a week without flaking.",
              "non toxic": "Free of the most common harsh solvents.",
              "high shine": "A glossy, glass-like finish."},
         feat={"wide brush": "Covers the nail in one stroke."},
         use={}, options={"color": ["Cherry Red", "Ballet Pink", "Navy", "Lilac", "Coral", "Black", "Nude"]},
         price=(5, 18), intro="Salon results at home with a smooth, even formula."),
    dict(category="beauty", query="makeup brush set",
         path="Beauty & Personal Care › Tools & Accessories › Makeup Brushes & Tools › Brush Sets",
         noun="makeup brush set", article=True, review_noun="brushes",
         cores=["Makeup Brush Set", "Professional Makeup Brushes", "Cosmetic Brush Kit"],
         tails=["Foundation and Eyeshadow Brushes", "Brushes for Face and Eyes", "Beauty Tool Kit"],
         adj={"synthetic": "Soft man-made bristles that blend well.",
              "cruelty free": "No animal hair is used.",
              "travel friendly": "Compact enough for a carry-on."},
         feat={"storage case": "A zip pouch keeps brushes clean.",
               "blending sponge": "Includes a sponge for liquid foundation.",
               "wooden handles": "Balanced handles with a natural finish."},
         use={}, options={"color": ["Black", "Rose Gold", "Pink", "White", "Champagne"],
                          "size": ["10 Pieces", "14 Pieces", "18 Pieces"]},
         price=(9, 39), intro="Everything you need for a flawless look, from base to brows."),
    dict(category="beauty", query="sunscreen",
         path="Beauty & Personal Care › Skin Care › Sunscreens & Tanning Products › Sunscreens",
         noun="sunscreen", article=False, review_noun="sunscreen",
         cores=["Sunscreen Lotion", "Mineral Sunscreen", "Daily Sunscreen"],
         tails=["Sun Protection for Face and Body", "Sunblock Lotion", "Outdoor Sun Care"],
         adj={"water resistant": "Stays effective for 80 minutes in the pool.",
              "reef safe": "Formulated without oxybenzone.",
              "broad spectrum": "Protects against UVA and UVB rays."},
         feat={"spf 50": "High protection for long days outside.",
               "zinc oxide": "A mineral filter that sits on the skin."},
         use={"kids": "Gentle enough for children."},
         options={"size": ["3 Fl Oz", "6 Fl Oz", "6 Fl Oz (Pack of 2)"]},
         price=(8, 29), intro="Reliable protection for the beach, the park and everyday errands."),
    dict(category="beauty", query="body lotion",
         path="Beauty & Personal Care › Skin Care › Body › Moisturizers › Lotions",
         noun="body lotion", article=False, review_noun="lotion",
         cores=["Body Lotion", "Moisturizing Body Lotion", "Daily Body Cream"],
         tails=["Lotion for Women and Men", "Hand and Body Lotion", "Skin Care Lotion"],
         adj={"fast absorbing": "Sinks in within seconds.",
              "non greasy": "Leaves no slick film.",
              "fragrance free": "Nothing added to scent it."},
         feat={"shea butter": "A rich butter that softens rough patches.",
               "aloe vera": "Soothes skin after sun.",
               "cocoa butter": "A classic for smooth skin."},
         use={"dry skin": "Relieves tight, flaky skin."},
         options={"size": ["8 Fl Oz", "16 Fl Oz", "32 Fl Oz"]},
         price=(6, 26), intro="A daily lotion that keeps skin soft from morning to night."),
    # ---------------------------------------------------------------- electronics
    dict(category="electronics", query="wireless earbuds",
         path="Electronics › Headphones, Earbuds & Accessories › Headphones & Earbuds › Earbud Headphones",
         noun="wireless earbuds", article=False, review_noun="earbuds",
         cores=["Wireless Earbuds", "Bluetooth Earbuds", "True Wireless Earphones"],
         tails=["Headphones for iPhone and Android", "In-Ear Headset", "Earphones for Workouts"],
         adj={"noise cancelling": "Active cancellation quiets planes and trains.",
              "sweatproof": "Rated IPX5 for hard workouts."},
         feat={"charging case": "The case adds 30 hours of playtime.",
               "built in microphone": "Clear calls with two mics per bud.",
               "touch control": "Tap to play, pause and skip tracks.",
               "wireless charging": "The case charges on any Qi pad."},
         use={"running": "A secure fit that stays in while you run."},
         options={"color": ["Black", "White", "Navy Blue", "Rose Gold"]},
         price=(19, 129), intro="Big sound in a tiny package, with a stable connection."),
    dict(category="electronics", query="phone case",
         path="Cell Phones & Accessories › Cases, Holsters & Sleeves › Basic Cases",
         noun="phone case", article=True, review_noun="case",
         cores=["Phone Case", "Protective Phone Cover", "Slim Phone Case"],
         tails=["Case for iPhone and Galaxy", "Protective Cover", "Bumper Case"],
         adj={"shockproof": "Corner air cushions absorb drops.",
              "anti yellowing": "A coating that keeps it from turning yellow.",
              "magsafe compatible": "Built-in magnets snap to chargers."},
         feat={"kickstand": "Props the phone up for videos.",
               "card holder": "A slot on the back holds two cards.",
               "raised edges": "A lip protects screen and camera."},
         use={}, options={"color": ["Clear", "Black", "Blue", "Purple", "Green", "Pink"],
                          "size": ["iPhone 14", "iPhone 14 Pro", "iPhone 15", "Galaxy S23", "Galaxy S24"]},
         price=(7, 29), intro="Everyday protection that keeps your phone looking new."),
    dict(category="electronics", query="usb c charger",
         path="Cell Phones & Accessories › Accessories › Chargers & Power Adapters › Wall Chargers",
         noun="usb c charger", article=True, review_noun="charger",
         cores=["USB C Charger", "USB-C Wall Charger", "Type C Power Adapter"],
         tails=["Charger Block for Phones and Tablets", "Power Adapter", "Charging Plug"],
         adj={"fast charging": "Charges a phone to 50 percent in 30 minutes.",
              "foldable": "The prongs fold away for travel.",
              "compact": "About the size of a matchbox."},
         feat={"gan technology": "Runs cooler and smaller than older chargers.",
               "dual port": "Charge two devices at once.",
               "braided cable": "Comes with a tough woven cord."},
         use={"laptop": "Enough power for a thin notebook."},
         options={"color": ["White", "Black"], "size": ["20W", "30W", "45W", "65W"]},
         price=(9, 49), intro="Dependable power for your phone, tablet and more."),
    dict(category="electronics", query="hdmi cable",
         path="Electronics › Accessories & Supplies › Audio & Video Accessories › Cables › HDMI Cables",
         noun="hdmi cable", article=True, review_noun="cable",
         cores=["HDMI Cable", "High Speed HDMI Cord", "HDMI 2.1 Cable"],
         tails=["Cord for TV, Monitor and Console", "Video Cable", "Home Theater Cable"],
         adj={"gold plated": "Corrosion resistant connectors.",
              "braided": "A woven jacket resists kinks and fraying."},
         feat={"4k support": "Carries 4K video at 60 frames per second.",
               "ethernet channel": "Shares an internet connection between devices.",
               "audio return": "Sends sound back to your soundbar."},
         use={"gaming": "Low latency for consoles."},
         options={"size": ["3 Feet", "6 Feet", "10 Feet", "15 Feet"], "color": ["Black", "Grey"]},
         price=(6, 25), intro="A reliable link between your screens and sources."),
    dict(category="electronics", query="bluetooth speaker",
         path="Electronics › Portable Audio & Video › Portable Speakers & Docks"
              " › Portable Bluetooth Speakers",
         noun="bluetooth speaker", article=True, review_noun="speaker",
         cores=["Bluetooth Speaker", "Wireless Speaker", "Mini Bluetooth Speaker"],
         tails=["Speaker for Home and Travel", "Party Speaker", "Beach Speaker"],
         adj={"portable": "Light enough to clip to a backpack.",
              "waterproof": "IPX7 rated, it even floats.",
              "rugged": "A tough shell survives drops."},
         feat={"stereo pairing": "Link two speakers for left and right sound.",
               "long battery life": "Plays for up to 24 hours.",
               "built in mic": "Take calls hands free."},
         use={"outdoor": "Loud enough for the campsite."},
         options={"color": ["Black", "Blue", "Red", "Teal", "Camo"]},
         price=(19, 99), intro="Room-filling sound with deep bass wherever you go."),
    dict(category="electronics", query="power bank",
         path="Cell Phones & Accessories › Accessories › Chargers & Power Adapters › Portable Power Banks",
         noun="power bank", article=True, review_noun="power bank",
         cores=["Power Bank", "Portable Charger", "Battery Pack"],
         tails=["External Battery for Phones", "Pocket Charger", "Charger for iPhone and Android"],
         adj={"slim": "Thinner than most phones.",
              "fast charging": "Tops up a phone at full speed."},
         feat={"led display": "Shows the exact charge left.",
               "usb c port": "Charge in and out over one port.",
               "wireless charging": "Set the phone on top to charge."},
         use={"travel": "Airline approved capacity."},
         options={"color": ["Black", "White", "Blue"], "size": ["10000mAh", "20000mAh", "26800mAh"]},
         price=(15, 59), intro="Keep your devices going through long days away from an outlet."),
    dict(category="electronics", query="wireless mouse",
         path="Electronics › Computers & Accessories › Computer Accessories & Peripherals › Mice",
         noun="wireless mouse", article=True, review_noun="mouse",
         cores=["Wireless Mouse", "Cordless Computer Mouse", "2.4G Wireless Mouse"],
         tails=["Mouse for Laptop and PC", "Office Mouse", "Computer Mouse for Mac"],
         adj={"ergonomic": "A contoured shape eases wrist strain.",
              "silent click": "Quiet buttons for libraries and shared offices.",
              "rechargeable": "No more batteries to buy."},
         feat={"usb receiver": "A nano dongle stores inside.",
               "adjustable dpi": "Three speed levels for precise work.",
               "side buttons": "Forward and back keys for browsing."},
         use={"left hand": "A shape that fits either hand."},
         options={"color": ["Black", "Grey", "White", "Pink", "Blue"]},
         price=(9, 39), intro="Smooth, accurate tracking on almost any surface."),
    dict(category="electronics", query="screen protector",
         path="Cell Phones & Accessories › Accessories › Screen Protectors",
         noun="screen protector", article=True, review_noun="screen protector",
         cores=["Screen Protector", "Tempered Glass Screen Protector", "Phone Screen Guard"],
         tails=["Protector for iPhone and Galaxy", "Screen Film", "Display Protector"],
         adj={"bubble free": "Goes on clean with no trapped air.",
              "anti glare": "A matte surface cuts reflections.",
              "case friendly": "Leaves room at the edges for a case."},
         feat={"installation frame": "A guide frame lines it up perfectly.",
               "privacy filter": "Hides the screen from side angles."},
         use={}, options={"size": ["iPhone 15", "iPhone 15 Pro Max", "Galaxy S24", "Pixel 8"],
                          "style": ["2 Pack", "3 Pack"]},
         price=(5, 19), intro="Crystal clear protection against scratches and cracks."),
    # ---------------------------------------------------------------- food
    dict(category="food", query="green tea",
         path="Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Tea › Green",
         noun="green tea", article=False, review_noun="tea",
         cores=["Green Tea Bags", "Green Tea", "Loose Leaf Green Tea"],
         tails=["Tea for Hot or Iced Brewing", "Everyday Tea", "Gourmet Tea Selection"],
         adj={"organic": "Certified organic leaves.",
              "decaffeinated": "Gently processed to remove most caffeine.",
              "non gmo": "Verified by an independent project."},
         feat={"individually wrapped": "Each bag is sealed for freshness.",
               "matcha": "Blended with stone-ground powder for depth."},
         use={}, options={"flavor": ["Original", "Jasmine", "Mint", "Lemon", "Honey Ginger"],
                          "size": ["20 Count (Pack of 1)", "20 Count (Pack of 6)", "100 Count"]},
         price=(5, 29), intro="A smooth, grassy cup with a clean finish."),
    dict(category="food", query="coffee beans",
         path="Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Coffee › Whole Coffee Beans",
         noun="coffee beans", article=False, review_noun="beans",
         cores=["Whole Bean Coffee", "Coffee Beans", "Artisan Roasted Coffee"],
         tails=["Coffee for Drip and Pour Over", "Small Batch Roast", "Gourmet Coffee"],
         adj={"single origin": "Grown on one farm in the highlands.",
              "fair trade": "Farmers are paid a fair price.",
              "organic": "Grown without synthetic pesticides.",
              "low acid": "Easy on the stomach."},
         feat={"nitrogen flushed bag": "The bag is sealed to keep beans fresh."},
         use={"espresso": "Pulls a thick crema."},
         options={"flavor name": ["Light Roast", "Medium Roast", "Dark Roast", "Espresso Roast"],
                  "size": ["12 Ounce", "2 Pound", "5 Pound"]},
         price=(9, 49), intro="Roasted in small batches for a rich, balanced cup."),
    dict(category="food", query="protein bars",
         path="Grocery & Gourmet Food › Snack Foods › Bars › Protein Bars",
         noun="protein bars", article=False, review_noun="bars",
         cores=["Protein Bars", "High Protein Snack Bars", "Protein Snack Bars"],
         tails=["Healthy Snack for Adults", "Meal Replacement Bars", "On the Go Snacks"],
         adj={"gluten free": "Made in a dedicated facility.",
              "low sugar": "Just 1 gram of added sugar.",
              "keto friendly": "Only 3 net carbs per bar.",
              "plant based": "Protein from peas and rice."},
         feat={"20g protein": "Keeps you full between meals."},
         use={},
         options={"flavor": ["Chocolate Peanut Butter", "Cookie Dough", "Salted Caramel", "Birthday Cake",
                                      "Chocolate Chip"],
                          "size": ["12 Count", "24 Count"]},
         price=(14, 44), intro="A satisfying snack that tastes like dessert."),
    dict(category="food", query="dark chocolate",
         path="Grocery & Gourmet Food › Candy & Chocolate › Chocolate › Chocolate Bars",
         noun="dark chocolate", article=False, review_noun="chocolate",
         cores=["Dark Chocolate Bars", "Dark Chocolate", "Premium Dark Chocolate Bar"],
         tails=["Gourmet Candy Bar", "Chocolate Gift", "Snacking Chocolate"],
         adj={"dairy free": "Contains no milk ingredients.",
              "fair trade": "The cocoa is ethically sourced.",
              "sugar free": "Sweetened with monk fruit instead.",
              "vegan": "Plant based from bean to bar."},
         feat={"72 percent cacao": "A deep, intense cocoa flavor."},
         use={}, options={"flavor": ["Sea Salt", "Almond", "Orange", "Mint", "Raspberry"],
                          "size": ["3.5 Ounce (Pack of 4)", "3.5 Ounce (Pack of 12)"]},
         price=(8, 36), intro="Smooth, rich chocolate made from carefully selected beans."),
    dict(category="food", query="mixed nuts",
         path="Grocery & Gourmet Food › Snack Foods › Nuts & Seeds › Mixed Nuts",
         noun="mixed nuts", article=False, review_noun="nuts",
         cores=["Mixed Nuts", "Deluxe Mixed Nuts", "Roasted Nut Mix"],
         tails=["Snack for Parties", "Healthy Snacks", "Nut Medley"],
         adj={"unsalted": "Nothing added but the nuts.",
              "dry roasted": "Roasted without oil.",
              "kosher": "Certified by a trusted agency.",
              "non gmo": "No genetically engineered ingredients."},
         feat={"resealable bag": "A zip top keeps them crunchy."},
         use={}, options={"size": ["1 Pound", "2 Pound", "3 Pound"]},
         price=(9, 34), intro="Cashews, almonds, pecans and more in every handful."),
    dict(category="food", query="beef jerky",
         path="Grocery & Gourmet Food › Meat & Seafood › Jerky & Dried Meats › Beef Jerky",
         noun="beef jerky", article=False, review_noun="jerky",
         cores=["Beef Jerky", "Premium Beef Jerky", "Original Cut Beef Jerky"],
         tails=["Meat Snack", "High Protein Snack", "Trail Snack"],
         adj={"grass fed": "Made from pasture raised cattle.",
              "low fat": "Trimmed lean before marinating.",
              "gluten free": "Marinated without wheat."},
         feat={"no added msg": "Seasoned with simple spices."},
         use={"hiking": "Light and packable for the trail."},
         options={"flavor": ["Original", "Teriyaki", "Cracked Pepper", "Sweet & Spicy", "Hickory Smoked"],
                  "size": ["3.25 Ounce", "8 Ounce", "16 Ounce"]},
         price=(7, 39), intro="Tender strips of beef slow smoked and seasoned."),
    dict(category="food", query="olive oil",
         path="Grocery & Gourmet Food › Pantry Staples › Cooking Oils › Olive Oils",
         noun="extra virgin olive oil", article=False, review_noun="oil",
         cores=["Extra Virgin Olive Oil", "Olive Oil", "Premium Extra Virgin Olive Oil"],
         tails=["Oil for Cooking and Salad", "Mediterranean Oil", "Kitchen Essential"],
         adj={"cold pressed": "Extracted without heat.",
              "organic": "From certified organic groves.",
              "unfiltered": "Bottled with its natural sediment."},
         feat={"glass bottle": "Dark glass protects it from light.",
               "single estate": "Every drop comes from one family grove."},
         use={}, options={"size": ["500 ml", "750 ml", "1 Liter", "3 Liter"]},
         price=(9, 49), intro="A fruity, peppery oil pressed from olives picked at their peak."),
    dict(category="food", query="pasta",
         path="Grocery & Gourmet Food › Pantry Staples › Pasta & Noodles › Dried Pasta",
         noun="pasta", article=False, review_noun="pasta",
         cores=["Chickpea Pasta", "Lentil Pasta", "Whole Grain Pasta"],
         tails=["Dinner Staple", "Pasta for Family Meals", "Pantry Pasta"],
         adj={"gluten free": "Made from legumes only.",
              "high fiber": "Six grams of fiber per serving.",
              "vegan": "Contains no egg.",
              "non gmo": "Verified ingredients."},
         feat={"bronze cut": "A rough surface that holds sauce."},
         use={}, options={"style": ["Penne", "Rotini", "Spaghetti", "Elbows"],
                          "size": ["8 Ounce (Pack of 6)", "12 Ounce (Pack of 4)"]},
         price=(8, 29), intro="Hearty pasta that cooks in minutes."),
    # ---------------------------------------------------------------- furniture
    dict(category="furniture", query="office chair",
         path="Home & Kitchen › Furniture › Home Office Furniture › Home Office Chairs › Desk Chairs",
         noun="office chair", article=True, review_noun="chair",
         cores=["Office Chair", "Ergonomic Desk Chair", "Home Office Desk Chair"],
         tails=["Computer Chair with Wheels", "Task Chair for Home", "Swivel Chair"],
         adj={"height adjustable": "A gas lift raises and lowers the seat.",
              "reclining": "Tilts back up to 120 degrees."},
         feat={"lumbar support": "A curved back support fits the lower spine.",
               "padded armrests": "Soft arm pads ease shoulder tension.",
               "mesh back": "A breathable backrest keeps you cool.",
               "headrest": "Cradles the neck when you lean back."},
         use={"long hours": "Comfortable through a full work day."},
         options={"color": ["Black", "Grey", "White", "Blue", "Pink"]},
         price=(69, 249), intro="Sit comfortably through meetings, study sessions and gaming."),
    dict(category="furniture", query="bookshelf",
         path="Home & Kitchen › Furniture › Living Room Furniture › Bookcases",
         noun="bookshelf", article=True, review_noun="bookshelf",
         cores=["Bookshelf", "Open Bookcase", "Tall Bookshelf"],
         tails=["Display Shelf for Living Room", "Storage Shelves", "Shelving Unit"],
         adj={"freestanding": "Stands on its own anywhere in a room.",
              "industrial": "Black metal and wood grain style."},
         feat={"metal frame": "A steel structure carries heavy books.",
               "anti tip kit": "Wall anchors keep it steady.",
               "adjustable shelves": "Move shelves to fit tall items."},
         use={"small spaces": "A narrow footprint fits tight corners."},
         options={"color": ["White", "Black", "Espresso", "Walnut", "Rustic Brown"],
                  "size": ["3 Tier", "4 Tier", "5 Tier"]},
         price=(39, 189), intro="Show off books, plants and keepsakes on sturdy shelves."),
    dict(category="furniture", query="coffee table",
         path="Home & Kitchen › Furniture › Living Room Furniture › Tables › Coffee Tables",
         noun="coffee table", article=True, review_noun="table",
         cores=["Coffee Table", "Living Room Coffee Table", "Modern Coffee Table"],
         tails=["Center Table for Living Room", "Cocktail Table", "Sofa Table"],
         adj={"mid century": "Tapered legs and clean lines.",
              "round": "Soft edges for homes with kids."},
         feat={"lift top": "The top rises to working height.",
               "storage shelf": "A lower shelf keeps magazines handy.",
               "hidden compartment": "Tuck remotes out of sight.",
               "solid wood legs": "Sturdy legs that will not wobble."},
         use={}, options={"color": ["Walnut", "White", "Black", "Natural Oak", "Weathered Grey"]},
         price=(59, 229), intro="A stylish centerpiece that pulls the living room together."),
    dict(category="furniture", query="bar stools",
         path="Home & Kitchen › Furniture › Game & Recreation Room Furniture"
              " › Home Bar Furniture › Barstools",
         noun="bar stools", article=False, review_noun="stools",
         cores=["Bar Stools Set of 2", "Counter Height Bar Stools", "Kitchen Bar Stools"],
         tails=["Stools for Kitchen Counter", "Pub Chairs", "Dining Stools"],
         adj={"swivel": "Turns a full 360 degrees.",
              "upholstered": "Padded seats in soft fabric."},
         feat={"footrest": "A ring to rest your feet.",
               "back support": "A low back for comfort.",
               "felt pads": "Protect floors from scratches."},
         use={"kitchen island": "The right height for most counters."},
         options={"color": ["Black", "Grey", "Brown", "White", "Navy"],
                  "size": ["24 Inch", "26 Inch", "30 Inch"]},
         price=(59, 199), intro="Pull up a seat at the counter or the home bar."),
    dict(category="furniture", query="nightstand",
         path="Home & Kitchen › Furniture › Bedroom Furniture › Nightstands",
         noun="nightstand", article=True, review_noun="nightstand",
         cores=["Nightstand", "Bedside Table", "Bedside End Table"],
         tails=["Side Table for Bedroom", "Bedroom Night Stand", "Small Table"],
         adj={"farmhouse": "Rustic wood look with simple hardware.",
              "floating": "Mounts on the wall to free the floor."},
         feat={"charging station": "Built-in outlets and USB ports.",
               "two drawers": "Store books and glasses.",
               "open shelf": "Display a plant or basket.",
               "led lights": "A soft glow for night reading."},
         use={}, options={"color": ["White", "Black", "Rustic Brown", "Grey", "Natural"]},
         price=(29, 129), intro="A handy bedside spot for a lamp, a book and your phone."),
    dict(category="furniture", query="storage ottoman",
         path="Home & Kitchen › Furniture › Living Room Furniture › Ottomans",
         noun="storage ottoman", article=True, review_noun="ottoman",
         cores=["Storage Ottoman", "Ottoman with Storage", "Storage Bench Ottoman"],
         tails=["Footstool for Living Room", "Hallway Bench", "Toy Chest Seat"],
         adj={"folding": "Collapses flat when not in use.",
              "faux leather": "Easy to wipe clean."},
         feat={"removable lid": "Lift off the top to reach inside.",
               "padded seat": "Thick foam for sitting.",
               "wooden feet": "Raised off the floor."},
         use={"entryway": "Store shoes by the door."},
         options={"color": ["Grey", "Beige", "Black", "Navy", "Brown"],
                  "size": ["Cube", "30 Inch Bench", "43 Inch Bench"]},
         price=(29, 119), intro="Extra seating and hidden storage in one piece."),
    dict(category="furniture", query="tv stand",
         path="Home & Kitchen › Furniture › Living Room Furniture"
              " › Television Stands & Entertainment Centers",
         noun="tv stand", article=True, review_noun="stand",
         cores=["TV Stand", "Entertainment Center", "TV Console Table"],
         tails=["Media Console for Living Room", "Television Cabinet", "Low Profile Console"],
         adj={"modern": "Sleek lines for a contemporary room."},
         feat={"led lights": "Color changing strips with a remote.",
               "cable management": "Holes keep cords tidy.",
               "glass shelves": "Tempered shelves for consoles.",
               "sliding barn doors": "Doors glide to hide clutter."},
         use={}, options={"color": ["Black", "White", "Walnut", "Grey Oak"],
                          "size": ["55 Inch", "65 Inch", "75 Inch"]},
         price=(79, 299), intro="A clean, organized home for your TV and media gear."),
    dict(category="furniture", query="bed frame",
         path="Home & Kitchen › Furniture › Bedroom Furniture › Beds, Frames & Bases › Beds",
         noun="bed frame", article=True, review_noun="bed frame",
         cores=["Bed Frame", "Platform Bed Frame", "Metal Bed Frame"],
         tails=["Mattress Foundation", "Bed Base", "Bedroom Bed"],
         adj={"noise free": "Joints will not squeak.",
              "upholstered": "Wrapped in soft linen fabric."},
         feat={"headboard": "Includes a matching headboard.",
               "under bed storage": "Tall clearance for storage bins.",
               "wooden slats": "Supports the mattress evenly.",
               "no box spring needed": "Put the mattress right on top."},
         use={}, options={"size": ["Twin", "Full", "Queen", "King"], "color": ["Black", "Grey", "White"]},
         price=(89, 349), intro="A sturdy foundation for a good night of sleep."),
]  # fmt: skip

LEADS = ["i need", "i am looking for", "i want", "i would like", "find me", "i'm looking for",
         "looking for", "i want to buy", "can you find me", "show me", "i'd like to get",
         "get me"]  # fmt: skip


def join_and(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def with_article(text: str, article: bool) -> str:
    if not article:
        return text
    return ("an " if text[0] in "aeiou" else "a ") + text


def instruction_text(t: dict, attrs: list[str], rng: random.Random) -> str:
    """A goal sentence in the style of WebShop's instructions, mentioning exactly ``attrs``."""
    adjs = [a for a in attrs if a in t["adj"]]
    feats = [a for a in attrs if a in t["feat"]]
    uses = [a for a in attrs if a in t["use"]]
    lead = rng.choice(LEADS)
    tail = (" with " + join_and(feats) if feats else "") + (" for " + join_and(uses) if uses else "")
    if adjs and rng.random() < 0.35:
        verb = "are" if t["noun"].endswith("s") and not t["article"] else "is"
        tail = (", with " + join_and(feats) if feats else "") + (" for " + join_and(uses) if uses else "")
        return f"{lead} {with_article(t['noun'], t['article'])} that {verb} {join_and(adjs)}{tail}"
    phrase = (", ".join(adjs) + " " if adjs else "") + t["noun"]
    return f"{lead} {with_article(phrase, t['article'])}{tail}"


def make_asin(rng: random.Random, used: set[str]) -> str:
    while True:
        asin = "B0" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))
        if asin not in used:
            used.add(asin)
            return asin


def money(x: float) -> str:
    return f"${x:.2f}"


def make_reviews(t: dict, attrs: list[str], rng: random.Random) -> list[dict]:
    reviews = []
    for _ in range(rng.randint(2, 4)):
        score = rng.choices([5, 4, 3, 2, 1], weights=[40, 30, 15, 10, 5])[0]
        n = t["review_noun"]
        body = rng.choice(REVIEW_OPENERS[score]).format(n=n)
        if score >= 4 and attrs:
            body += f' The "{rng.choice(attrs)}" claim holds up.'
        body += " " + rng.choice(REVIEW_CLOSERS[score])
        reviews.append({"title": rng.choice(REVIEW_TITLES[score]), "score": score, "body": body})
    return reviews


def make_product(t: dict, rng: random.Random, used: set[str]) -> dict:
    pool = list(t["adj"]) + list(t["feat"]) + list(t["use"])
    k = min(len(pool), rng.randint(3, 5))
    chosen = set(rng.sample(pool, k))
    attrs = [a for a in pool if a in chosen]
    n_goal = min(len(attrs), rng.choices([1, 2, 3], [3, 5, 3])[0])
    in_goal = set(rng.sample(attrs, n_goal))
    goal_attrs = [a for a in attrs if a in in_goal]
    brand = rng.choice(BRANDS[t["category"]])
    title_attrs = [a for a in attrs if a in t["adj"]][: rng.randint(0, 2)]
    title = f"{brand} {rng.choice(t['cores'])}"
    if title_attrs:
        title += " " + " ".join(a.title() for a in title_attrs)
    title += ", " + rng.choice(t["tails"])

    sentences = {**t["adj"], **t["feat"], **t["use"]}
    bullets = [f"{a.upper()}: {sentences[a]}" for a in attrs]
    bullets.append(rng.choice(GENERIC_BULLETS[t["category"]]))
    highlights = f"Highlights of the {t['query']}: {join_and(rng.sample(attrs, len(attrs)))}."
    description = " ".join([t["intro"], highlights, *(sentences[a] for a in rng.sample(attrs, len(attrs))),
                            f"Designed by {brand}."])  # fmt: skip

    options = {}
    if rng.random() > 0.08:
        for name, values in t["options"].items():
            keep = set(rng.sample(values, rng.randint(2, min(6, len(values)))))
            options[name] = [{"value": v} for v in values if v in keep]
    lo, hi = t["price"]
    price = round(rng.uniform(lo, hi)) - rng.choice([0.01, 0.01, 0.05, 0.51])
    pricing = money(price)
    if options and rng.random() < 0.25:
        pricing += " " + money(round(price * rng.uniform(1.2, 1.6)) - 0.01)
    reviews = make_reviews(t, attrs, rng)
    rating = f"{sum(r['score'] for r in reviews) / len(reviews):.1f}"
    return {
        "asin": make_asin(rng, used),
        "name": title,
        "query": t["query"],
        "category": t["category"],
        "product_category": t["path"],
        "pricing": pricing,
        "full_description": description,
        "small_description": bullets,
        "customization_options": options,
        "attributes": attrs,
        "instruction": instruction_text(t, goal_attrs, rng),
        "instruction_attributes": goal_attrs,
        "reviews": reviews,
        "rating": rating,
    }


def check(types: list[dict], products: list[dict]) -> None:
    """Fail when the catalog would make the reward ambiguous within a product type."""
    pools = {t["query"]: list(t["adj"]) + list(t["feat"]) + list(t["use"]) for t in types}
    for query, pool in pools.items():
        for i, a in enumerate(pool):
            for b in pool[i + 1 :]:
                assert token_set_ratio(a, b) <= 85, f"{query}: attributes {a!r} and {b!r} fuzzy-match"
    problems = set()
    for t in types:
        for name, values in t["options"].items():
            for v in values:
                value = v.lower().replace("/", " | ")
                if option_matches([value], {name: value}) != 1:
                    problems.add(
                        f"{t['query']}: option {name}={v!r} would not match itself (normalize_color)"
                    )
    for p in products:
        text = " ".join([p["name"], " ".join(p["small_description"]), p["full_description"]]).lower()
        for a in pools[p["query"]]:
            if a not in p["attributes"] and a in text:
                problems.add(f"{p['query']}: a product mentions {a!r} but lacks it")
    assert not problems, "\n".join(sorted(problems))


def build() -> list[dict]:
    rng = random.Random(SEED)
    used: set[str] = set()
    products = [make_product(t, rng, used) for t in TYPES for _ in range(PER_TYPE)]
    check(TYPES, products)
    rng.shuffle(products)  # items_shuffle: catalog order carries no information
    return products


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    products = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(json.dumps(p, ensure_ascii=False, separators=(",", ":")) for p in products)
    args.out.write_text('{"version":1,"products":[\n' + lines + "\n]}\n", encoding="utf-8")
    n_goals = sum(
        max(1, __import__("math").prod(len(v) for v in p["customization_options"].values())) for p in products
    )
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1024:.0f} KiB): {len(products)} products, {len(TYPES)} types, "
          f"{len({p['category'] for p in products})} categories, {n_goals} synthetic goals")  # fmt: skip


if __name__ == "__main__":
    main()
